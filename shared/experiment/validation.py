"""Checks of hostile values at the API's boundary: every problem names its field and says why (STYLE 15)."""

from __future__ import annotations

from shared.errors import ValidationError


def whole_number(body: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, f"must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ValidationError(name, f"must be between {lo} and {hi}, got {value}")
    return value


def number(body: dict, name: str, default: float | None, lo: float, hi: float, allow_none: bool = False):
    """A number in (lo, hi]."""
    value = body.get(name, default)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(name, f"must be a number, got {value!r}")
    if not lo < value <= hi:
        raise ValidationError(name, f"must be greater than {lo} and at most {hi}, got {value}")
    return float(value)


def choice(body: dict, name: str, default: str, choices: list[str]) -> str:
    value = body.get(name, default)
    if value not in choices:
        raise ValidationError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value
