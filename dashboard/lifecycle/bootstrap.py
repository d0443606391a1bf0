"""One-time start-up work of a dashboard process (never at import or in create_app): the first
operator and its API token from the environment (DESIGN §8), and the configured plants' YAML file."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from dashboard.extensions import db
from dashboard.models import ApiToken, Operator, record_audit
from dashboard.models.operators import ROLES, token_digest

log = logging.getLogger(__name__)


def ensure_operator(email: str, password: str | None, role: str = "viewer", actor: str = "system") -> Operator:
    """The operator `email`, created with `role` when missing (an existing one keeps its role)."""
    operator = db.session.scalar(db.select(Operator).filter_by(email=email))
    if operator is None:
        if not password:
            raise ValueError(f"operator {email} does not exist and no password was given")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        operator = Operator(email=email, role=role)
        operator.set_password(password)
        db.session.add(operator)
        record_audit(actor, "operator.created", email, role=role)
        log.info("created operator %s (%s)", email, role)
    return operator


def bootstrap(app) -> None:
    """Idempotent; several gunicorn workers may run it at once, and the loser of that race has nothing to do."""
    try:
        _bootstrap(app)
    except IntegrityError:
        db.session.rollback()
        log.info("first operator already created by another process")
    from dashboard.registry.federation_ca import ensure_federation_ca

    ensure_federation_ca(app)  # made on first start; every process logs which CA it trusts
    if app.config.get("DASHBOARD_FACTORIES_FILE"):
        from dashboard.registry.configured_plants import import_plants, load_plants

        names = import_plants(load_plants(app.config["DASHBOARD_FACTORIES_FILE"]))
        log.info("imported configured plants from %s: %s", app.config["DASHBOARD_FACTORIES_FILE"], ", ".join(names))


def _bootstrap(app) -> None:
    email, password = app.config["DASHBOARD_ADMIN_EMAIL"], app.config["DASHBOARD_ADMIN_PASSWORD"]
    token = app.config["DASHBOARD_API_TOKEN"]
    if email and (password or token):
        operator = ensure_operator(email, password or None, role="admin") if password else db.session.scalar(
            db.select(Operator).filter_by(email=email))
        if operator is not None and operator.role != "admin":  # the first operator from the environment is admin
            record_audit("system", "operator.role_changed", email, previous=operator.role, role="admin")
            operator.role = "admin"
        if operator is not None and token and db.session.scalar(
                db.select(ApiToken).filter_by(token_hash=token_digest(token))) is None:
            db.session.add(ApiToken.issue(operator, "DASHBOARD_API_TOKEN", token)[0])
    db.session.commit()
