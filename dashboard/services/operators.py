"""Operators (people who use the dashboard): create, change a role, disable or enable, reset a password. The one
definition the CLI (dashboard.cli.operators), the Operators page (dashboard.ui.operators) and the JSON API
(dashboard.api.operators) all call; every change audited (never with a password).

Two rules keep the dashboard manageable: the last enabled admin can be neither demoted nor disabled, and from the
pages and the API nobody demotes or disables themselves (`by`, the acting operator; the CLI acts as nobody).
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata

from dashboard.config import MIN_PASSWORD
from dashboard.errors import OperatorNotFound, RoleChangeRefused
from dashboard.extensions import db
from dashboard.models import Operator, record_audit
from dashboard.models.base import utcnow
from dashboard.models.operators import ROLES
from shared.errors import ValidationError

log = logging.getLogger(__name__)

MAX_ID = 2 ** 63 - 1
MAX_EMAIL, MAX_PASSWORD = 255, 1024
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

__all__ = ["RoleChangeRefused", "all_operators", "create_operator", "get_operator", "reset_password",
           "set_disabled", "set_role"]


def all_operators() -> list[Operator]:
    return list(db.session.scalars(db.select(Operator).order_by(Operator.email)).all())


def get_operator(operator_id: int) -> Operator:
    operator = db.session.get(Operator, operator_id) if 0 < operator_id <= MAX_ID else None
    if operator is None:
        raise OperatorNotFound(f"no operator with id {operator_id}")
    return operator


def generated_password() -> str:
    """A password for an operator to change at first login (/password): 128 bits, URL-safe."""
    return secrets.token_urlsafe(16)


def _text(value: object) -> bool:
    """A string that can be stored and hashed: JSON may carry lone surrogates, which UTF-8 cannot encode."""
    try:
        return isinstance(value, str) and (value.encode() is not None)
    except UnicodeEncodeError:
        return False


def _check_new(email: object, role: object, password: object) -> list[tuple[str, str]]:
    problems = []
    if not _text(email) or not EMAIL.match(email) or len(email) > MAX_EMAIL or not email.isprintable() \
            or any(unicodedata.category(c) == "Cf" for c in email):  # no NUL, bidi or zero-width look-alikes
        problems.append(("email", f"must be an e-mail address of at most {MAX_EMAIL} printable characters"))
    elif db.session.scalar(db.select(Operator.id).where(db.func.lower(Operator.email) == email.lower())) is not None:
        problems.append(("email", f"operator {email} exists (e-mail addresses are compared without case)"))
    if role not in ROLES:
        problems.append(("role", f"must be one of {', '.join(ROLES)}"))
    if password is not None and (not _text(password) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        problems.append(("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters, or left out to "
                                     "have one generated"))
    return problems


def create_operator(email: str, role: str, password: str | None, actor: str) -> tuple[Operator, str | None]:
    """A new operator with `role` and `password`, or a generated password when None: returned (the second item)
    to be shown once; only its hash is stored. ValidationError (400) with every problem at once. Commits."""
    email = email.strip() if _text(email) else email
    problems = _check_new(email, role, password)
    if problems:
        raise ValidationError(problems[0][0], problems[0][1], problems)
    generated = generated_password() if password is None else None
    operator = Operator(email=email, role=role)
    operator.set_password(password if generated is None else generated)
    db.session.add(operator)
    record_audit(actor, "operator.created", email, role=role, generated_password=generated is not None)
    db.session.commit()
    log.info("%s created operator %s (%s)", actor, email, role)
    return operator, generated


def _enabled_admins() -> int:
    """The enabled admins, their rows locked until the transaction ends (PostgreSQL; SQLite serialises writers)."""
    return len(db.session.scalars(db.select(Operator.id).filter(
        Operator.role == "admin", Operator.disabled_at.is_(None)).with_for_update()).all())


def _still_an_admin(operator: Operator, what: str) -> None:
    """After the change is flushed, count again: two admins demoting or disabling each other at once both saw
    two before their own write (review); whichever writes second finds none left and is rolled back."""
    db.session.flush()
    if _enabled_admins() == 0:
        db.session.rollback()
        raise RoleChangeRefused(f"{operator.email} is the only admin left enabled: make another operator admin first "
                                f"(another admin's change landed while this {what} was on its way)")


def _refuse_losing_an_admin(operator: Operator, what: str, by: Operator | None) -> None:
    if by is not None and by.id == operator.id:
        raise RoleChangeRefused(f"you cannot {what} yourself: ask another admin")
    if operator.role == "admin" and not operator.disabled and _enabled_admins() <= 1:
        raise RoleChangeRefused(f"{operator.email} is the only admin left enabled: make another operator admin first")


def set_role(operator: Operator, role: str, actor: str, by: Operator | None = None) -> Operator:
    """Give `operator` the role `role`; the last enabled admin cannot be demoted (nobody could then manage
    roles except from the CLI), nor can `by` demote themselves. Commits."""
    if role not in ROLES:
        raise RoleChangeRefused(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if operator.role == role:
        return operator
    if operator.role == "admin":
        _refuse_losing_an_admin(operator, "demote", by)
    previous, operator.role = operator.role, role
    if previous == "admin":
        _still_an_admin(operator, "demotion")
    record_audit(actor, "operator.role_changed", operator.email, previous=previous, role=role)
    db.session.commit()
    log.info("%s changed %s from %s to %s", actor, operator.email, previous, role)
    return operator


def set_disabled(operator: Operator, disabled: bool, actor: str, by: Operator | None = None) -> Operator:
    """Disable an operator (no login, its session ends, its API tokens are refused; all kept) or enable it
    again. Refused for oneself and for the last enabled admin. Doing what is already so changes nothing."""
    if disabled == operator.disabled:
        return operator
    if disabled:
        _refuse_losing_an_admin(operator, "disable", by)
    operator.disabled_at = utcnow() if disabled else None
    if disabled and operator.role == "admin":
        _still_an_admin(operator, "disabling")
    record_audit(actor, "operator.disabled" if disabled else "operator.enabled", operator.email)
    db.session.commit()
    log.info("%s %s operator %s", actor, "disabled" if disabled else "enabled", operator.email)
    return operator


def reset_password(operator: Operator, actor: str) -> str:
    """A new generated password for `operator`, returned to be shown once (audited without it). Nothing else
    changes: its sessions and API tokens stay; a disabled operator stays disabled. Commits."""
    password = generated_password()
    operator.set_password(password)
    record_audit(actor, "operator.password_reset", operator.email)
    db.session.commit()
    log.info("%s reset the password of %s", actor, operator.email)
    return password
