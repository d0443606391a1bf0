"""Readers of the registry messages' wire fields (shared.protocol.registry): each takes the value as the other
side sent it, treats it as hostile (habit 17) and raises ValidationError naming the field (a 400 at the
dashboard)."""

from __future__ import annotations

import math
import re

from shared.errors import ValidationError
from shared.protocol.fields import PLANT_NAME_RULE, is_plant_name

MAX_POLICY_SETTINGS = 30
MAX_POLICY_NAME, MAX_POLICY_TEXT = 64, 200
RAW_KEY_HEX = re.compile(r"[0-9a-f]{64}")  # X25519 / Ed25519 raw public keys: 32 bytes, lowercase hex


def text(body: dict, key: str, *, optional: bool = False, max_len: int = 255, label: str | None = None):
    """A string of at most max_len characters; None when optional and absent (or null)."""
    name = label or key
    value = body.get(key)
    if value is None:
        if optional:
            return None
        raise ValidationError(name, "is required")
    if not isinstance(value, str):
        raise ValidationError(name, f"must be str, got {type(value).__name__}")
    if len(value) > max_len:
        raise ValidationError(name, f"must be at most {max_len} characters")
    return value


def plant_name(value, key: str = "factory_name") -> str:
    """The one plant-name rule (shared.protocol.fields.PLANT_NAME), as a 400 naming the field."""
    if value is None:
        raise ValidationError(key, "is required")
    if not is_plant_name(value):
        raise ValidationError(key, f"must be a plant name: {PLANT_NAME_RULE}")
    return value


def record(body: dict, key: str, *, optional: bool = False) -> dict | None:
    value = body.get(key)
    if value is None:
        if optional:
            return None
        raise ValidationError(key, "is required")
    if not isinstance(value, dict):
        raise ValidationError(key, f"must be dict, got {type(value).__name__}")
    return value


def count(body: dict, key: str, limit: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValidationError(key, f"must be a whole number between 0 and {limit}, got {str(value)[:40]!r}")
    return value


def raw_key(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not RAW_KEY_HEX.fullmatch(value):
        shown = repr(value[:80]) if isinstance(value, str) else type(value).__name__
        raise ValidationError(key, f"must be a raw 32-byte public key as 64 lowercase hex characters, got {shown}")
    return value


def policy(body: dict) -> dict | None:
    """The plant's own policy (DESIGN §9) as it reports it: a flat object of at most 30 scalar settings."""
    policy = record(body, "policy", optional=True)
    if policy is None:
        return None
    if len(policy) > MAX_POLICY_SETTINGS:
        raise ValidationError("policy", f"must hold at most {MAX_POLICY_SETTINGS} settings, got {len(policy)}")
    for name, value in policy.items():
        if len(name) > MAX_POLICY_NAME:
            raise ValidationError("policy", f"setting names are at most {MAX_POLICY_NAME} characters: {name[:40]!r}…")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"policy.{name}", f"must be a finite number, got {value!r}")
        if isinstance(value, str) and len(value) > MAX_POLICY_TEXT:
            raise ValidationError(f"policy.{name}", f"must be at most {MAX_POLICY_TEXT} characters")
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ValidationError(f"policy.{name}", f"must be a number, text, true/false or null, got "
                                                    f"{type(value).__name__}")
    return policy
