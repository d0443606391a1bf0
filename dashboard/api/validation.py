"""Reading JSON bodies at the boundary: a clear 400 for anything that is not the expected object."""

from __future__ import annotations

from flask import request

from shared.errors import ValidationError


def json_body() -> dict:
    if not request.is_json:
        raise ValidationError("body", "send JSON with 'Content-Type: application/json'")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the JSON parser recursing through thousands of nested brackets
        raise ValidationError("body", "is nested too deeply") from None
    if body is None:
        raise ValidationError("body", "is not valid JSON")
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    return body


def require(body: dict, name: str, kind, *, optional: bool = False, max_len: int = 255):
    if name not in body or body[name] is None:
        if optional:
            return None
        raise ValidationError(name, "is required")
    value = body[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ValidationError(name, f"must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise ValidationError(name, f"must be {' or '.join(k.__name__ for k in kinds)}, got {type(value).__name__}")
    if isinstance(value, str) and len(value) > max_len:
        raise ValidationError(name, f"must be at most {max_len} characters")
    return value
