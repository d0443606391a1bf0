"""What operators decide about plant identity (DESIGN §4): one-time enrolment tokens for a plant name, and
approving or discarding the re-keying requests that dashboard.registry.identity keeps for a known name. Used by the CLI
(`flask --app dashboard factories enrol | approve-rekey`), the API and the enrolment page. Nothing is committed
here: the caller commits.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from dashboard.extensions import db
from dashboard.models import EnrolmentToken, Factory, FactoryRekey, record_audit
from dashboard.models.base import isoformat, utcnow
from dashboard.models.operators import token_digest
from shared.errors import ConfigurationError, ValidationError
from shared.protocol.registry_fields import plant_name
from dashboard.errors import IdentityNotFound

log = logging.getLogger(__name__)
MAX_ENROLMENT_HOURS = 24 * 30


def issue_enrolment_token(name: str, expires_in_hours: float, actor: str) -> tuple[EnrolmentToken, str]:
    """A one-time token for plant `name` (shown once: only its digest is kept). Not committed."""
    plant_name(name)
    if isinstance(expires_in_hours, bool) or not isinstance(expires_in_hours, (int, float)) \
            or not 0 < expires_in_hours <= MAX_ENROLMENT_HOURS:
        raise ValidationError("expires_in_hours", f"must be a number of hours above 0 and at most "
                                                  f"{MAX_ENROLMENT_HOURS}, got {expires_in_hours!r}")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = EnrolmentToken(factory_name=name, token_hash=token_digest(token), created_at=now, created_by=actor[:255],
                         expires_at=now + timedelta(hours=float(expires_in_hours)))
    db.session.add(row)
    record_audit(actor, "enrolment_token.created", name, expires_at=isoformat(row.expires_at),
                 plant_known=db.session.scalar(db.select(Factory.id).filter_by(name=name)) is not None)
    return row, token


def pending_rekey(name: str, rekey_id: int | None = None) -> FactoryRekey:
    """The re-keying request of plant `name` waiting for approval: `rekey_id`, or the only one."""
    factory = db.session.scalar(db.select(Factory).filter_by(name=name))
    if factory is None:
        raise IdentityNotFound(f"no plant named {name!r}")
    waiting = db.session.scalars(db.select(FactoryRekey).filter_by(factory_id=factory.id, approved_at=None)
                                 .order_by(FactoryRekey.id)).all()
    if rekey_id is not None:
        match = [r for r in waiting if r.id == rekey_id]
        if not match:
            raise IdentityNotFound(f"plant {name!r} has no re-keying request #{rekey_id} waiting for approval")
        return match[0]
    if not waiting:
        raise IdentityNotFound(f"plant {name!r} has no re-keying request waiting for approval")
    if len(waiting) > 1:
        listed = "; ".join(describe_rekey(r) for r in waiting)
        raise ConfigurationError(f"plant {name!r} has {len(waiting)} re-keying requests waiting: {listed}. Pick the "
                                 "one whose key fingerprint the plant's agent logged (--id N)")
    return waiting[0]


def describe_rekey(rekey: FactoryRekey) -> str:
    return (f"#{rekey.id}: identity key {rekey.identity_fingerprint}, secure-aggregation key "
            f"{rekey.secagg_fingerprint or 'none'}, from {rekey.hostname}:{rekey.port}, requested "
            f"{isoformat(rekey.requested_at)}")


def approve_rekey(name: str, actor: str, rekey_id: int | None = None) -> FactoryRekey:
    """Approve a waiting re-keying request: the next registration signed by its identity key binds it. Not
    committed."""
    rekey = pending_rekey(name, rekey_id)
    rekey.approved_at, rekey.approved_by = utcnow(), actor[:255]
    record_audit(actor, "factory.rekey_approved", name, rekey_id=rekey.id, identity_key=rekey.identity_fingerprint,
                 secagg_key=rekey.secagg_fingerprint, hostname=rekey.hostname, port=rekey.port)
    log.warning("%s approved re-keying plant %s to identity key %s", actor, name, rekey.identity_fingerprint)
    return rekey


def discard_rekey(name: str, actor: str, rekey_id: int) -> FactoryRekey:
    """Drop a waiting re-keying request (an attempt the operator does not recognise). Not committed."""
    rekey = pending_rekey(name, rekey_id)
    db.session.delete(rekey)
    record_audit(actor, "factory.rekey_discarded", name, rekey_id=rekey.id, identity_key=rekey.identity_fingerprint,
                 hostname=rekey.hostname, port=rekey.port)
    return rekey


def enrolment_tokens(limit: int = 100) -> list[EnrolmentToken]:
    return db.session.scalars(db.select(EnrolmentToken).order_by(EnrolmentToken.id.desc()).limit(limit)).all()
