"""Credential encryption at rest (Fernet) and request authentication helpers."""

from __future__ import annotations

import functools
import hmac

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, g, request
from flask_login import current_user

from dashboard.extensions import db
from dashboard.models import ApiToken
from dashboard.models.operators import token_digest
from shared.errors import SecurityError


def fernet() -> Fernet:
    return Fernet(current_app.config["CREDENTIALS_KEY"].encode())


def encrypt(secret: str) -> str:
    return fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecurityError("stored credentials cannot be decrypted: was CREDENTIALS_KEY changed?") from exc


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Unauthorized(SecurityError):
    status_code = 401


def operator_required(view):
    """JSON API access: a logged-in operator session or a bearer API token."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_user.is_authenticated:
            g.actor = current_user.email
            return view(*args, **kwargs)
        token = bearer_token()
        if token:
            row = db.session.scalar(db.select(ApiToken).filter_by(token_hash=token_digest(token), revoked=False))
            if row is not None:
                g.actor = f"{row.operator.email} (token {row.name})"
                return view(*args, **kwargs)
        raise Unauthorized("log in or send 'Authorization: Bearer <API token>'")

    return wrapper
