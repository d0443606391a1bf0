"""Credential encryption at rest (Fernet), constant-time comparison, safe redirects and the security headers of
every response. Request authentication and roles are dashboard.auth.roles (re-exported here for the modules that
import them from this one)."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, request

from shared.errors import SecurityError

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


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


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
