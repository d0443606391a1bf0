"""Operators' roles (viewer, operator, admin), changed the same way from the CLI and the pages."""

from __future__ import annotations

import logging

from dashboard.extensions import db
from dashboard.models import Operator, record_audit
from dashboard.models.operators import ROLES
from dashboard.errors import RoleChangeRefused

log = logging.getLogger(__name__)


def set_role(operator: Operator, role: str, actor: str) -> Operator:
    """Give `operator` the role `role`; the last admin cannot be demoted (nobody could then manage roles
    except from the CLI). Commits."""
    if role not in ROLES:
        raise RoleChangeRefused(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if operator.role == role:
        return operator
    if operator.role == "admin":
        admins = db.session.scalar(db.select(db.func.count()).select_from(Operator).filter_by(role="admin"))
        if admins <= 1:
            raise RoleChangeRefused(f"{operator.email} is the only admin: make another operator admin first")
    previous, operator.role = operator.role, role
    record_audit(actor, "operator.role_changed", operator.email, previous=previous, role=role)
    db.session.commit()
    log.info("%s changed %s from %s to %s", actor, operator.email, previous, role)
    return operator
