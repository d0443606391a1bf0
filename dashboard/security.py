"""Credential encryption at rest (Fernet), request authentication and authorisation (roles), CSRF for the
cookie-authenticated JSON API, safe redirects and the security headers of every response."""

from __future__ import annotations

import functools
import hmac
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from flask import abort, current_app, g, request
from flask_login import current_user, login_required

from dashboard.extensions import csrf, db
from dashboard.models import ApiToken, Operator
from dashboard.models.operators import ROLES, token_digest
from shared.errors import SecurityError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# No inline script anywhere (scripts are static files); inline style attributes stay allowed for the
# server-drawn bars. frame-ancestors is the modern X-Frame-Options.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


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


class Forbidden(SecurityError):
    status_code = 403


def authenticate_operator() -> Operator:
    """The operator behind this request: a bearer API token (which acts with its operator's role), else the
    session cookie. A cookie-authenticated state-changing request must carry the CSRF token (header
    X-CSRFToken): the API blueprints are exempt from Flask-WTF's form check, and a browser attaches the
    cookie to a cross-site POST. A bearer token cannot be attached by another site, so it needs none."""
    token = bearer_token()
    if token:
        row = db.session.scalar(db.select(ApiToken).filter_by(token_hash=token_digest(token), revoked=False))
        if row is None:
            raise Unauthorized("wrong or revoked API token")
        g.actor, g.operator = f"{row.operator.email} (token {row.name})", row.operator
        return row.operator
    if current_user.is_authenticated:
        if request.method not in SAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect()  # 400 "The CSRF token is missing." (JSON under /api/)
        g.actor, g.operator = current_user.email, current_user
        return current_user
    raise Unauthorized("log in or send 'Authorization: Bearer <API token>'")


def _check_role(operator: Operator, role: str) -> None:
    if not operator.can(role):
        raise Forbidden(f"this needs the {role} role; {operator.email} has the {operator.role} role "
                        "(an admin can change it: flask --app dashboard operators set-role EMAIL ROLE)")


def operator_required(view=None, *, role: str | None = None):
    """JSON API access: a logged-in operator session or a bearer API token, holding `role` or a higher one.
    Without `role`: viewer for reads (GET), admin for anything else, so a new write endpoint is never
    opened wider than it should be by forgetting to name its role.

        @operator_required                      # read
        @operator_required(role="operator")     # run experiments
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            operator = authenticate_operator()
            _check_role(operator, role or ("viewer" if request.method in SAFE_METHODS else "admin"))
            return view(*args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def role_required(role: str):
    """Pages: log in first (redirect to /login), then hold `role` or a higher one (403 otherwise)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.can(role):
                abort(403, description=f"This page needs the {role} role; you have the {current_user.role} role.")
            return view(*args, **kwargs)

        return login_required(wrapper)

    return decorate


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None. Browsers read a backslash as a slash and drop
    tabs and newlines, so `/\\evil.com`, `/%5Cevil.com` (decoded by then) and `/\\t/evil.com` lead off-site
    just like `//evil.com` and `https://evil.com`: only a plain absolute path is kept."""
    if not target or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    if not target.startswith("/") or target.startswith("//"):  # '///evil.com' too: urlsplit sees a path there
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def register_response_headers(app) -> None:
    """Security headers on every response: pages, JSON, static files and errors alike."""

    @app.after_request
    def add_security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:  # behind a TLS proxy with DASHBOARD_PROXY_FIX set
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
