"""Field validators for the wire form of the protocol: each takes the value as the other side sent it, treats it
as hostile (habit 17) and raises ProtocolError naming the field and the bad value."""

from __future__ import annotations

import math
import re

import numpy as np

from shared.errors import ProtocolError

MAX_FEATURES = 4096
MAX_NAME = 200
MAX_PLANTS = 1000
MAX_ID = 2 ** 31 - 1
MAX_WEIGHT_ARRAYS = 256
# THE plant-name rule, for the agent's --factory_name, the dashboard's registration, enrolment and release
# pages, and the secure-aggregation participants: a name becomes a file name in the state and log folders, a
# PySyft datasite name, a TLS common name (at most 64), a URL path segment, an e-mail domain and HTML. So: ASCII
# letters and digits, '-' and '_', a letter or digit first (no '.', '..', '/', spaces, control or bidi
# characters, no look-alike Unicode, no leading '-' read as an option), 1 to 64 characters.
MAX_PLANT_NAME = 64
PLANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,%d}" % (MAX_PLANT_NAME - 1))
PLANT_NAME_RULE = f"1 to {MAX_PLANT_NAME} ASCII letters, digits, '-' and '_', starting with a letter or digit"


def integer(d: dict, key: str, low: int = 0, high: int = MAX_ID, default=None) -> int:
    value = d.get(key, default)
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise ProtocolError(f"{key} must be an integer, got {type(value).__name__}")
    if not low <= int(value) <= high:
        raise ProtocolError(f"{key} = {value} is outside [{low}, {high}]")
    return int(value)


def number(d: dict, key: str, low: float, high: float, default=None) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ProtocolError(f"{key} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ProtocolError(f"{key} = {value} is outside [{low}, {high}]")
    return value


def flag(d: dict, key: str, default: bool = False) -> bool:
    """A true boolean: 1, "true" or None are not."""
    value = d.get(key, default)
    if not isinstance(value, (bool, np.bool_)):
        raise ProtocolError(f"{key} must be true or false, got {type(value).__name__}")
    return bool(value)


def names(d: dict, key: str) -> tuple[str, ...]:
    value = d.get(key)
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_FEATURES:
        raise ProtocolError(f"{key} must be a list of 1 to {MAX_FEATURES} names")
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in value):
        raise ProtocolError(f"{key} must hold non-empty strings of at most {MAX_NAME} characters")
    if len(set(value)) != len(value):
        raise ProtocolError(f"{key} names a feature twice")
    return tuple(value)


def is_plant_name(value) -> bool:
    """The one plant-name rule (PLANT_NAME); every layer that takes a name asks this."""
    return isinstance(value, str) and PLANT_NAME.fullmatch(value) is not None


def plant_name(value, key: str) -> str:
    if not is_plant_name(value):
        raise ProtocolError(f"{key} {str(value)[:40]!r} is not a plant name ({PLANT_NAME_RULE})")
    return value


def obj(d: dict, key: str, label: str | None = None) -> dict:
    value = d.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"{label or key} must be an object")
    return value


def vector(value, key: str, length: int | None = None, dtype=np.float64) -> np.ndarray:
    """A 1-d array of `dtype`; for an integer dtype only integers (no booleans, floats or strings, which numpy
    would truncate or parse); a value out of the dtype's range is a ProtocolError, never an OverflowError."""
    if np.issubdtype(dtype, np.integer) and not _integers(value, np.iinfo(dtype)):
        raise ProtocolError(f"{key} must be a vector of integers in range")
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"{key} is not a numeric vector in range") from exc
    if array.ndim != 1 or (length is not None and len(array) != length):
        raise ProtocolError(f"{key} must be a vector of {length} values")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ProtocolError(f"{key} holds a value that is not finite")
    return array


def _integers(value, info: np.iinfo) -> bool:
    """An integer array, or a list of integers within the dtype's range (numpy would wrap -1 to 2^64 - 1)."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iu"
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and info.min <= v <= info.max
        for v in value)


def byte_strings(value: dict, key: str, limit: int | None = None) -> dict[str, bytes]:
    if not all(isinstance(v, (bytes, bytearray)) and (limit is None or len(v) < limit) for v in value.values()):
        raise ProtocolError(f"{key} must be byte strings")
    return value


def weights_of(value, key: str = "weights") -> dict[str, np.ndarray]:
    """A dict of finite numeric arrays (shapes are checked against the model where it is built)."""
    if not isinstance(value, dict) or not 0 < len(value) <= MAX_WEIGHT_ARRAYS:
        raise ProtocolError(f"{key} must be an object of 1 to {MAX_WEIGHT_ARRAYS} arrays")
    out = {}
    for name, array in value.items():
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise ProtocolError(f"{key} has a parameter name that is not a short string")
        try:
            array = np.asarray(array)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"{key}[{name!r}] is not an array") from exc
        if array.dtype.kind not in "fiu":
            raise ProtocolError(f"{key}[{name!r}] is not numeric ({array.dtype})")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ProtocolError(f"{key}[{name!r}] holds a value that is not finite")
        out[name] = array
    return out
