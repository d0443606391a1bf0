"""Operators' credentials: the password login and their API tokens (a token acts with its operator's role),
each change audited."""

from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import ApiToken, Operator, record_audit

MAX_ID = 2 ** 63 - 1


def password_login(email: str, password: str) -> Operator | None:
    """The operator with this e-mail and password (its login audited), or None: which of the two was wrong is
    not said. A disabled operator with the right password is returned too (the caller refuses it, saying so:
    only who knows the password learns that the account is disabled), its attempt audited."""
    operator = db.session.scalar(db.select(Operator).filter_by(email=email))
    if operator is None or not operator.check_password(password):
        return None
    if operator.disabled:
        record_audit(operator.email, "operator.login_refused", operator.email, reason="disabled")
        db.session.commit()
        return operator
    record_audit(operator.email, "operator.login")
    db.session.commit()
    return operator


def change_password(operator: Operator, current: str, new: str) -> bool:
    """Set `operator`'s own password to `new` if `current` is its password now (audited, without either);
    False, and nothing changed, when `current` is wrong."""
    if not operator.check_password(current):
        record_audit(operator.email, "operator.password_change_refused", operator.email, reason="wrong current password")
        db.session.commit()
        return False
    operator.set_password(new)
    record_audit(operator.email, "operator.password_changed", operator.email)
    db.session.commit()
    return True


def issue_token(operator: Operator, name: str) -> str:
    """A new API token for `operator`; only its digest is stored, so the caller shows it once."""
    row, token = ApiToken.issue(operator, name)
    db.session.add(row)
    record_audit(operator.email, "token.created", name)
    db.session.commit()
    return token


def tokens_visible_to(operator: Operator) -> list[ApiToken]:
    """An operator's own tokens, newest first; an admin sees (and may revoke) every operator's."""
    query = db.select(ApiToken).order_by(ApiToken.id.desc())
    if not operator.can("admin"):
        query = query.filter_by(operator_id=operator.id)
    return list(db.session.scalars(query).all())


def revoke_token(operator: Operator, token_id: int) -> ApiToken | None:
    """Revoke a token `operator` may see; None when there is no such token for them."""
    row = db.session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if row is None or (row.operator_id != operator.id and not operator.can("admin")):
        return None
    row.revoked = True
    record_audit(operator.email, "token.revoked", row.name)
    db.session.commit()
    return row
