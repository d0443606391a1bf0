"""Request authentication and authorisation (roles, DESIGN §8): who is asking, from a bearer API token or the
session cookie, and whether their role allows what they ask. Pages redirect to the login page and answer 403;
the JSON API answers 401 and 403 with a JSON body (dashboard.api.errors)."""

from __future__ import annotations

import functools

from flask import abort, current_app, g, request
from flask_login import current_user, login_required

from dashboard.extensions import csrf, db, login_manager
from dashboard.models import ApiToken, Operator
from dashboard.models.operators import ROLES, token_digest
from dashboard.errors import Forbidden, Unauthorized

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@login_manager.user_loader
def load_operator(operator_id: str) -> Operator | None:
    operator = db.session.get(Operator, int(operator_id))
    return None if operator is None or operator.disabled else operator  # a disabled operator's session ends


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


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
        if row.operator.disabled:
            raise Unauthorized(f"the operator of this API token, {row.operator.email}, is disabled")
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


def _known_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role


def operator_required(view=None, *, role: str | None = None):
    """JSON API access: a logged-in operator session or a bearer API token, holding `role` or a higher one.
    Without `role`: viewer for reads (GET), admin for anything else, so a new write endpoint is never
    opened wider than it should be by forgetting to name its role.

        @operator_required                      # read
        @operator_required(role="operator")     # run experiments
    """
    if role is not None:
        _known_role(role)

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
    _known_role(role)

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.can(role):
                abort(403, description=f"This page needs the {role} role; you have the {current_user.role} role.")
            return view(*args, **kwargs)

        return login_required(wrapper)

    return decorate
