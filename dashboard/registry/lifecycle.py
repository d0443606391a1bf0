"""A plant's lifecycle (DESIGN §4, decision 0023): decommissioning, bringing it back, and the labels operators
give it (display name and site; its name stays its identity).

Decommissioned (an admin, from the plant's page, the API or the CLI): its heartbeat token and any unused one-time
enrolment token of its name are revoked at once, it leaves every future cohort (dashboard.orchestration.selection)
and is refused when an experiment names it at creation or start; its rounds, releases, heartbeats and audit
trail are kept. Its heartbeat is answered 403 saying so. Only a registration with a one-time enrolment token made
for its name after it was decommissioned brings it back (audited as factory.recommissioned): neither the shared
enrolment token, nor its identity key's signature, nor an approved re-key does, so retiring a plant cannot be
undone by the plant alone.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from flask import current_app

from dashboard.errors import AlreadyDecommissioned, PlantDecommissioned
from dashboard.extensions import db
from dashboard.models import EnrolmentToken, Factory, record_audit
from dashboard.models.base import isoformat, utcnow
from dashboard.models.operators import token_digest
from shared.enums import FactoryStatus
from shared.errors import ValidationError

log = logging.getLogger(__name__)
LABEL_LIMITS = {"display_name": 80, "site": 120}  # the columns' lengths (dashboard.models.factories)
BACK = "an admin brings it back with a one-time enrolment token for its name (the enrolment page, or " \
       "`flask --app dashboard factories enrol {name}`), with which its agent registers again"


class UnknownPlant(LookupError):
    """A heartbeat or a decommissioning names a plant the registry does not hold (404)."""


def _plant(name: str) -> Factory:
    factory = db.session.scalar(db.select(Factory).filter_by(name=name))
    if factory is None:
        raise UnknownPlant(f"unknown factory {name[:120]!r}")
    return factory


def decommission(name: str, actor: str) -> Factory:
    """Retire a plant (module docstring). UnknownPlant (404), AlreadyDecommissioned (409). Audited; commits."""
    from dashboard.registry import heartbeats

    factory = _plant(name)
    if factory.decommissioned_at is not None:
        raise AlreadyDecommissioned(f"plant {name!r} was decommissioned already ({isoformat(factory.decommissioned_at)}"
                                    f" by {factory.decommissioned_by})")
    now = utcnow()
    factory.heartbeat_token_hash = token_digest(secrets.token_urlsafe(32))  # a token nobody holds
    factory.decommissioned_at, factory.decommissioned_by = now, actor[:255]
    factory.status = FactoryStatus.OFFLINE.value  # after decommissioned_at: the webhook sends no plant.offline
    revoked = db.session.execute(db.update(EnrolmentToken).where(
        EnrolmentToken.factory_name == name, EnrolmentToken.used_at.is_(None), EnrolmentToken.expires_at > now)
        .values(expires_at=now)).rowcount
    record_audit(actor, "factory.decommissioned", name, enrolment_tokens_revoked=revoked,
                 display_name=factory.display_name, site=factory.site)
    db.session.commit()
    heartbeats.buffer_of(current_app).tokens.forget(name)  # other workers: their next write sees the new digest
    log.warning("%s decommissioned plant %s (%d unused enrolment token(s) revoked)", actor, name, revoked)
    return factory


def refusal(name: str, decommissioned_at) -> str:
    """What a decommissioned plant's agent is told: the caller is not authenticated yet (its token was revoked, and a
    stranger may ask too), so neither who nor when (review: the time is the operators' to know)."""
    return (f"plant {name!r} was decommissioned: its heartbeat token is revoked "
            f"and it takes part in no experiment; {BACK.format(name=name)}")


def refuse_heartbeat(name: str, decommissioned_at) -> None:
    if decommissioned_at is not None:
        raise PlantDecommissioned(refusal(name, decommissioned_at))


def fresh_enrolment_token(factory: Factory, bearer: str | None) -> EnrolmentToken:
    """The one-time token that re-admits decommissioned `factory`: made for its name after it was decommissioned,
    unused, unexpired; PlantDecommissioned (403) otherwise."""
    token = db.session.scalar(db.select(EnrolmentToken).filter_by(token_hash=token_digest(bearer))) if bearer else None
    if token is None or token.factory_name != factory.name or token.used_at is not None \
            or token.expires_at <= utcnow() or token.created_at < factory.decommissioned_at:
        raise PlantDecommissioned(refusal(factory.name, factory.decommissioned_at)
                                  + " (this registration carries no such token)")
    return token


def recommission(factory: Factory, credential: str) -> None:
    """A registration admitted by fresh_enrolment_token brings the plant back (same transaction; audited)."""
    record_audit(f"factory:{factory.name}", "factory.recommissioned", factory.name, credential=credential,
                 decommissioned_at=isoformat(factory.decommissioned_at), decommissioned_by=factory.decommissioned_by)
    log.warning("plant %s is back: registered with a fresh one-time enrolment token (decommissioned %s by %s)",
                factory.name, isoformat(factory.decommissioned_at), factory.decommissioned_by)
    factory.decommissioned_at = factory.decommissioned_by = None


def refuse_named(names) -> None:
    """ValidationError (400, field "factories") when an experiment lists decommissioned plants."""
    if names == "all" or not names:
        return
    retired = db.session.execute(db.select(Factory.name, Factory.decommissioned_at).where(
        Factory.name.in_(list(names)), Factory.decommissioned_at.is_not(None)).order_by(Factory.name)).all()
    if retired:
        listed = ", ".join(f"{n} ({isoformat(at)})" for n, at in retired)
        raise ValidationError("factories", f"decommissioned plants take part in no experiment: {listed}; leave "
                                           "them out, or bring them back with a one-time enrolment token first")


# --- labels ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlantLabels:
    """What a PATCH may change: None leaves a label as it is, "" clears it."""

    display_name: str | None = None
    site: str | None = None

    @classmethod
    def from_wire(cls, body: dict) -> PlantLabels:
        unknown = sorted(set(body) - set(LABEL_LIMITS))
        if unknown:
            raise ValidationError(unknown[0][:40], "is not a plant label; send display_name and/or site")
        if not body:
            raise ValidationError("body", "send display_name and/or site")
        found, values = [], {}
        for key, limit in LABEL_LIMITS.items():
            try:
                values[key] = _label(body, key, limit)
            except ValidationError as exc:
                found.append(exc)
        if found:
            raise ValidationError.of(found)
        return cls(**values)


def _label(body: dict, key: str, limit: int) -> str | None:
    if key not in body:
        return None
    value = body[key]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(key, f"must be text (or empty to clear it), got {type(value).__name__}")
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(key, f"must be at most {limit} characters, got {len(value)}")
    if not value.isprintable():
        raise ValidationError(key, "must be printable text: no control characters, tabs or line breaks")
    return value


def relabel(name: str, labels: PlantLabels, actor: str) -> Factory:
    """Set or clear the plant's display name and site. UnknownPlant (404). Audited; commits."""
    factory = _plant(name)
    changed = {}
    for key in LABEL_LIMITS:
        value = getattr(labels, key)
        if value is not None and (value or None) != getattr(factory, key):
            changed[key] = {"from": getattr(factory, key), "to": value or None}
            setattr(factory, key, value or None)
    if changed:
        record_audit(actor, "factory.relabelled", name, **changed)
    db.session.commit()
    return factory
