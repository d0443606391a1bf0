"""The one reader of settings from the environment, for the dashboard and the agent alike (issue 26 item 4).

Each reader takes the variable's name and its default and returns a typed value, or raises ConfigurationError
naming the variable, the value it holds and what it should hold. The default applies only when the variable is
unset, except for the yes/no and number readers, where a blank value (`NAME=` in a compose file) also means
unset: an empty string is no number, and every yes/no variable read it as its default already.

- `env_bool`: 1/true/yes/on or 0/false/no/off (any case, blanks around); anything else is an error, never False;
- `env_int`, `env_float`: a number, within [minimum, maximum] when given; a float must be finite;
- `env_str`, `env_path`: the text exactly as set (an explicit empty value stays empty) and a filesystem path;
- `env_secret`: NAME's value, or the contents of the file NAME_FILE names (Docker and Kubernetes secrets),
  never both.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from shared.errors import ConfigurationError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _raw(name: str) -> str | None:
    """The stripped value, None when unset or blank (the typed readers' notion of unset)."""
    value = os.environ.get(name)
    return None if value is None or not value.strip() else value.strip()


def parse_bool(name: str, text: str) -> bool:
    """`text` as a yes/no value; ConfigurationError naming `name` when it is neither."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name}={text!r} is not a yes/no value: use 1, true, yes or on, or 0, false, no or off")


def env_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    return default if raw is None else parse_bool(name, raw)


def _in_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f"at least {minimum:g}"
        high = "" if maximum is None else f"at most {maximum:g}"
        raise ConfigurationError(f"{name}={value:g} is out of range: it must be {' and '.join(filter(None, (low, high)))}")


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None
    _in_range(name, value, minimum, maximum)
    return value


def env_float(name: str, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigurationError(f"{name}={raw!r} is not a finite number")
    _in_range(name, value, minimum, maximum)
    return value


def env_str(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_path(name: str, default: str | Path | None = None) -> Path | None:
    raw = os.environ.get(name)
    if raw is None:
        return None if default is None else Path(default)
    if "\x00" in raw:
        raise ConfigurationError(f"{name} holds a NUL character: not a path")
    return Path(raw)


def env_secret(name: str, default: str | None = None) -> str | None:
    """NAME's value as set, else the contents of the file NAME_FILE names (stripped: files end in a newline),
    else `default`. Both set is an error (which one was meant?), as is a file that cannot be read or is empty."""
    value, file_name = os.environ.get(name), f"{name}_FILE"
    path = env_path(file_name) if _raw(file_name) is not None else None
    if value and path is not None:
        raise ConfigurationError(f"{name} and {file_name} are both set: set one of them")
    if path is None:
        return default if value is None else value
    try:
        secret = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{file_name}={str(path)!r} cannot be read: {getattr(exc, 'strerror', exc)}") from exc
    if not secret:
        raise ConfigurationError(f"{file_name}={str(path)!r} is an empty file: it must hold {name}'s value")
    return secret
