"""Plant identity at registration (DESIGN §4): who may register a plant name, and with which key.

- A new name is admitted by an enrolment credential: a one-time token an operator made for exactly that name
  (unused, unexpired), or the shared FACTORY_ENROLLMENT_TOKEN (none set: open enrolment, development only).
  Its first registration binds the name to the Ed25519 identity key it sends (and to its secure-aggregation key).
- A known name is admitted only with proof of its bound identity key: a signature over the body and a
  timestamp (shared.identity; within ±5 min of this clock, never the same signature twice), or the plant's
  current heartbeat token. An enrolment token alone never admits a known name: every plant holds the shared
  one, so it would let any plant take another's rounds, weights and secure-aggregation seat.
- A decommissioned name is admitted only by a one-time enrolment token made for it after it was decommissioned
  (dashboard.registry.lifecycle): it binds the identity key it sends, as a first registration does.
- Anything else under a known name (another identity key, no proof, a new secure-aggregation key proven only
  by the heartbeat token) changes nothing: it is kept as a pending re-key (keys, address, time) and answered
  409 until an operator approves it (the plant's page or `flask --app dashboard factories approve-rekey`);
  the next registration signed by the approved key then binds it.

The register handler calls `admit` before it touches the plant's row and `settle` once it has updated it. The
signature check is dashboard.registry.signature; what operators decide (enrolment tokens, re-key approvals)
is dashboard.registry.enrolment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app, request

from dashboard.extensions import db
from dashboard.models import EnrolmentToken, Factory, FactoryRekey, record_audit
from dashboard.models.base import isoformat, utcnow
from dashboard.models.operators import token_digest
from dashboard.registry import lifecycle
from dashboard.registry.signature import verified_signature
from dashboard.auth.roles import Unauthorized, bearer_token
from dashboard.auth.security import constant_time_equal
from shared.errors import ValidationError
from shared.identity import SIGNATURE_HEADER, fingerprint, load_public_key
from dashboard.errors import RekeyRequired

log = logging.getLogger(__name__)
MAX_PENDING_REKEYS = 10  # per plant: a flood of attempts pushes out the oldest, never an approved one
REKEY_PENDING = "rekey_pending"  # detail.reason of the 409, for agents to tell it from other refusals


@dataclass(frozen=True)
class IdentityClaim:
    """What a registration says about who it is; `body` is the parsed JSON the signature covers."""

    name: str
    identity_public_key: str
    secagg_public_key: str | None
    hostname: str
    port: int
    body: dict


@dataclass(frozen=True)
class Admission:
    credential: str  # how the caller proved it may register this name (for the audit line)
    enrolment_token_id: int | None = None  # a one-time token this registration consumes
    bind_identity: bool = False  # the name gets this identity key (first registration or approved re-key)
    approved_rekey_id: int | None = None
    secagg_key_changed: bool = False
    recommission: bool = False  # a decommissioned plant back with a fresh one-time token (registry.lifecycle)


def identity_public_key(body: dict) -> str:
    value = body.get("identity_public_key")
    if value is None:
        raise ValidationError("identity_public_key", "is required: the plant's Ed25519 public key in hex (agents "
                                                     "from this release send it)")
    if not isinstance(value, str):
        raise ValidationError("identity_public_key", f"must be text, got {type(value).__name__}")
    value = value.lower()
    try:
        load_public_key(value)
    except ValueError as exc:
        raise ValidationError("identity_public_key", str(exc)) from None
    return value


def refuse_without_any_credential() -> None:
    """Before the body is read: a caller with neither a bearer token nor a signature is 401 (unless enrolment
    is open), so anonymous requests learn nothing about validation or names."""
    if current_app.config["FACTORY_ENROLLMENT_TOKEN"] and not bearer_token() \
            and not request.headers.get(SIGNATURE_HEADER):
        raise Unauthorized("missing enrollment token: start the agent with --enrollment-token")


# --- admission ---------------------------------------------------------------------------------------
def admit(claim: IdentityClaim, factory: Factory | None) -> Admission:
    """Who this registration may be, or Unauthorized (401) / RekeyRequired (409, the pending re-key committed,
    the plant's row untouched)."""
    signed = verified_signature(claim.identity_public_key, claim.body)
    bearer = bearer_token()
    if factory is None:
        credential, token = _enrolment_credential(bearer, claim.name)
        return Admission(credential, enrolment_token_id=token.id if token else None, bind_identity=True)
    if factory.decommissioned_at is not None:  # only an operator's new decision brings it back, as a new enrolment
        token = lifecycle.fresh_enrolment_token(factory, bearer)
        return Admission("one-time enrolment token", enrolment_token_id=token.id,
                         bind_identity=claim.identity_public_key != factory.identity_public_key,
                         secagg_key_changed=claim.secagg_public_key != factory.secagg_public_key, recommission=True)
    heartbeat = bool(bearer) and constant_time_equal(token_digest(bearer), factory.heartbeat_token_hash or "")
    bound = factory.identity_public_key
    secagg_changed = claim.secagg_public_key != factory.secagg_public_key
    if bound == claim.identity_public_key:
        if signed:
            return Admission("identity key signature", secagg_key_changed=secagg_changed)
        if heartbeat and not secagg_changed and _unchanged(claim, factory):
            return Admission("heartbeat token")
        reason = ("a new secure-aggregation key, address, orchestrator login or certificate needs the identity "
                  "key's signature, not only the heartbeat token (it travels with every heartbeat)"
                  if heartbeat else "it proves nothing: no signature by the identity key, not the plant's current "
                                    "heartbeat token")
    elif bound is None and heartbeat and not secagg_changed:
        return Admission("heartbeat token", bind_identity=True)  # a plant from before identities, still running
    else:
        approved = _approved_rekey(factory, claim.identity_public_key) if signed else None
        if approved is not None:
            return Admission("approved re-keying", bind_identity=True, approved_rekey_id=approved.id,
                             secagg_key_changed=secagg_changed)
        reason = "it carries another identity key than the one this name is bound to" if bound else \
            "this plant registered before identity keys: binding its first one needs an operator's approval"
    if not heartbeat:  # only a caller that may enrol at all (or the plant's current session) leaves a request
        _enrolment_credential(bearer, claim.name)
    pending = _record_pending(factory, claim, reason)
    db.session.commit()
    next_step = ("An operator approved this key: register again, signed by it" if pending.approved_at else
                 "Re-keying needs an operator's approval: the request waits on the plant's page, or for "
                 f"`flask --app dashboard factories approve-rekey {claim.name}`")
    raise RekeyRequired(
        f"plant {claim.name!r} is already registered (identity key {fingerprint(bound) or 'none'}); this "
        f"registration (identity key {fingerprint(claim.identity_public_key)}, {claim.hostname}:{claim.port}) was "
        f"not admitted: {reason}. Nothing was changed. {next_step}",
        {"reason": REKEY_PENDING, "factory_name": claim.name, "rekey_id": pending.id,
         "identity_key_fingerprint": fingerprint(claim.identity_public_key),
         "bound_identity_key_fingerprint": fingerprint(bound)})


def _unchanged(claim: IdentityClaim, factory: Factory) -> bool:
    """The registration repeats what the plant registered: same address, same orchestrator login, and asks for
    no certificate. Anything else needs the identity key's signature: a heartbeat token can be overheard."""
    from dashboard.auth.security import decrypt

    orchestrator = claim.body.get("orchestrator") if isinstance(claim.body.get("orchestrator"), dict) else {}
    return (claim.hostname == factory.hostname and claim.port == factory.port
            and not claim.body.get("certificate_request")
            and orchestrator.get("email") == factory.orchestrator_email
            and bool(factory.orchestrator_password_enc)
            and constant_time_equal(str(orchestrator.get("password", "")), decrypt(factory.orchestrator_password_enc)))


def _enrolment_credential(bearer: str | None, name: str) -> tuple[str, EnrolmentToken | None]:
    """(credential, one-time token row) that lets the caller enrol `name`, or Unauthorized."""
    if bearer:
        token = db.session.scalar(db.select(EnrolmentToken).filter_by(token_hash=token_digest(bearer)))
        if token is not None:
            if token.factory_name != name:
                raise Unauthorized(f"this one-time enrolment token is for plant {token.factory_name!r}, not {name!r}")
            if token.used_at is not None:
                raise Unauthorized(f"this one-time enrolment token was already used ({isoformat(token.used_at)}): "
                                   "ask an operator for a new one")
            if token.expires_at <= utcnow():
                raise Unauthorized(f"this one-time enrolment token expired ({isoformat(token.expires_at)}): ask an "
                                   "operator for a new one")
            return "one-time enrolment token", token
    reserved = db.session.scalar(db.select(EnrolmentToken.id).where(
        EnrolmentToken.factory_name == name, EnrolmentToken.used_at.is_(None), EnrolmentToken.expires_at > utcnow()))
    if reserved is not None:  # an operator made a one-time token for this name: only that token enrols it
        raise Unauthorized(f"plant name {name!r} is reserved for the one-time enrolment token an operator made for "
                           "it: start the agent with that token")
    shared = current_app.config["FACTORY_ENROLLMENT_TOKEN"]
    if not shared:
        return "open enrolment", None
    if bearer and constant_time_equal(bearer, shared):
        return "shared enrolment token", None
    raise Unauthorized("missing or wrong enrollment token: start the agent with --enrollment-token (the shared "
                       "token, or a one-time token an operator made for this plant)")


def _approved_rekey(factory: Factory, identity_key: str) -> FactoryRekey | None:
    return db.session.scalar(db.select(FactoryRekey).where(
        FactoryRekey.factory_id == factory.id, FactoryRekey.identity_public_key == identity_key,
        FactoryRekey.approved_at.is_not(None)).order_by(FactoryRekey.id.desc()).limit(1))


def _record_pending(factory: Factory, claim: IdentityClaim, reason: str) -> FactoryRekey:
    rows = db.session.scalars(db.select(FactoryRekey).filter_by(factory_id=factory.id)
                              .order_by(FactoryRekey.id)).all()
    same = next((r for r in rows if r.identity_public_key == claim.identity_public_key
                 and r.secagg_public_key == claim.secagg_public_key), None)
    if same is not None:
        if same.approved_at is None:  # the same plant retrying: the newest address and time, one audit line
            same.hostname, same.port, same.requested_at, same.reason = claim.hostname, claim.port, utcnow(), reason
        log.info("plant %s: re-keying request #%d retried from %s:%d", claim.name, same.id, claim.hostname, claim.port)
        return same
    waiting = [r for r in rows if r.approved_at is None]
    for old in waiting[:max(0, len(waiting) - MAX_PENDING_REKEYS + 1)]:
        db.session.delete(old)
    pending = FactoryRekey(factory_id=factory.id, identity_public_key=claim.identity_public_key,
                           secagg_public_key=claim.secagg_public_key, hostname=claim.hostname, port=claim.port,
                           reason=reason[:255], requested_at=utcnow())
    db.session.add(pending)
    db.session.flush()
    record_audit(f"factory:{claim.name}", "factory.rekey_requested", claim.name, rekey_id=pending.id,
                 identity_key=fingerprint(claim.identity_public_key), secagg_key=fingerprint(claim.secagg_public_key),
                 hostname=claim.hostname, port=claim.port, reason=reason)
    log.warning("plant %s: a registration with identity key %s from %s:%d waits for an operator's approval (%s)",
                claim.name, fingerprint(claim.identity_public_key), claim.hostname, claim.port, reason)
    return pending


def settle(admission: Admission, factory: Factory, claim: IdentityClaim) -> None:
    """Before the handler writes the registration into the plant's row (new or known), in the same
    transaction: consume the one-time token, bind the identity key, drop the re-keying requests this
    registration answers, audit key changes."""
    with db.session.no_autoflush:  # a new plant's row is filled in by the handler afterwards
        _settle(admission, factory, claim)


def _settle(admission: Admission, factory: Factory, claim: IdentityClaim) -> None:
    now = utcnow()
    if admission.enrolment_token_id is not None:
        used = db.session.execute(db.update(EnrolmentToken).where(
            EnrolmentToken.id == admission.enrolment_token_id, EnrolmentToken.used_at.is_(None)).values(used_at=now))
        if used.rowcount != 1:  # another registration used it a moment ago
            db.session.rollback()
            raise Unauthorized("this one-time enrolment token was already used: ask an operator for a new one")
    previous = factory.identity_public_key
    if admission.bind_identity:
        factory.identity_public_key = claim.identity_public_key
        if admission.approved_rekey_id is not None or previous is not None:
            record_audit(f"factory:{claim.name}", "factory.rekeyed", claim.name, old_identity_key=fingerprint(previous),
                         identity_key=fingerprint(claim.identity_public_key), rekey_id=admission.approved_rekey_id)
            log.warning("plant %s re-keyed: identity key %s -> %s (approved by an operator)", claim.name,
                        fingerprint(previous), fingerprint(claim.identity_public_key))
        else:
            record_audit(f"factory:{claim.name}", "factory.identity_bound", claim.name,
                         identity_key=fingerprint(claim.identity_public_key), credential=admission.credential)
    if admission.secagg_key_changed and previous is not None:
        record_audit(f"factory:{claim.name}", "factory.secagg_key_changed", claim.name,
                     old_secagg_key=fingerprint(factory.secagg_public_key),
                     secagg_key=fingerprint(claim.secagg_public_key), credential=admission.credential)
        log.warning("plant %s changed its secure-aggregation key (proven by its identity key)", claim.name)
    if factory.id is not None:
        answered = db.delete(FactoryRekey).where(FactoryRekey.factory_id == factory.id)
        if admission.approved_rekey_id is None:  # keep other keys' attempts for the operator to see
            answered = answered.where(FactoryRekey.identity_public_key == claim.identity_public_key)
        db.session.execute(answered)
