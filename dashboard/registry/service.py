"""The registry's service (DESIGN §4): what a registration and a heartbeat do, for the views
in dashboard.api.factories and the CLI (as dashboard.services does for experiments).

The messages are shared.protocol.registry's, read from the body once here (`Registration.from_wire`,
`Heartbeat.from_wire`); what needs this dashboard's settings is checked beside them (the address and the
capabilities' schema: dashboard.registry.schema; the identity key and the enrolment credential:
dashboard.registry.identity; the certificate request: dashboard.registry.federation_ca).

Decommissioning and relabelling a plant are dashboard.registry.lifecycle's; a decommissioned plant's heartbeat
is refused here (403), and its registration is admitted only by identity.admit's fresh one-time token.

A heartbeat's row, status and load are written by one path: this process's buffer (dashboard.registry.heartbeats,
batched). Its floor report, when it carries one, is stored in the request (dashboard.registry.floor: its history,
its release claim and the alert webhook after commit).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from flask import current_app

from dashboard.auth.roles import Unauthorized
from dashboard.auth.security import constant_time_equal, encrypt
from dashboard.errors import VersionConflict
from dashboard.extensions import db
from dashboard.models import Factory, record_audit
from dashboard.models.base import utcnow
from dashboard.models.operators import token_digest
from dashboard.registry import floor, heartbeats, identity, lifecycle
from dashboard.registry.federation_ca import certificate_request_of
from dashboard.registry.lifecycle import UnknownPlant  # noqa: F401 - the views' 404
from dashboard.registry.schema import validate_registration
from shared import __version__, release_line
from shared.enums import FactoryStatus
from shared.protocol.registry import Heartbeat, Registration, plant_name, text

log = logging.getLogger(__name__)
# the agents this dashboard can drive: the same release line (major, and minor while major is 0: semantic
# versioning lets a 0.x minor change the protocol, as 0.4's histograms did)
SUPPORTED_AGENT_LINE = release_line(__version__)


@dataclass(frozen=True)
class Registered:
    answer: dict  # factory_id, heartbeat_token, heartbeat_interval (and certificate_chain with TLS)
    created: bool  # False: a re-registration


def register(body: dict) -> Registered:
    """Admit, store and answer a registration (the caller has a credential: identity.refuse_without_any_credential).
    Raises ValidationError (400), VersionConflict (409), and identity's 401 and 409 (re-key kept for an operator)."""
    validate_registration(body)  # address (no SSRF), capabilities schema
    reg = Registration.from_wire(body)
    name, hostname, port = reg.factory_name, reg.factory_hostname, reg.factory_port
    if release_line(reg.agent_version) != SUPPORTED_AGENT_LINE:
        raise VersionConflict(f"agent version {reg.agent_version} cannot be driven by this dashboard (supports "
                              f"{SUPPORTED_AGENT_LINE}.x); install the matching FactoryFL release")
    # TLS (registry.federation_ca): the plant's certificate request, checked before anything changes
    certificate_request = certificate_request_of(current_app.config, body, name, hostname)

    # --- identity (registry.identity): who may register this name, with which key ----------------------
    claim = identity.IdentityClaim(name, identity.identity_public_key(body), reg.secagg_public_key, hostname, port,
                                   body)
    factory = db.session.scalar(db.select(Factory).filter_by(name=name))
    admission = identity.admit(claim, factory)  # 401, or 409 with the request kept for an operator
    created = factory is None
    if created:
        factory = Factory(name=name)
        db.session.add(factory)
    identity.settle(admission, factory, claim)
    if admission.recommission:
        lifecycle.recommission(factory, admission.credential)
    # --- from here on the caller is this plant -----------------------------------------------------
    issued = certificate_request.issue() if certificate_request else None  # signed for the admitted plant only
    capabilities = dict(reg.capabilities)
    capabilities["transport"] = "https" if issued else "http"  # how the dashboard reaches it (never the plant's say)

    token = secrets.token_urlsafe(32)
    factory.hostname, factory.port, factory.device = hostname, port, reg.device
    factory.capabilities = capabilities
    factory.orchestrator_email = reg.orchestrator_email
    factory.orchestrator_password_enc = encrypt(reg.orchestrator_password)
    factory.secagg_public_key = reg.secagg_public_key
    factory.agent_version, factory.policy = reg.agent_version, reg.policy
    # its trust mode, as this start of its agent reports it (None from an older agent: unknown, so not trusting)
    factory.trust_dashboard, factory.federation_key = reg.trust_dashboard, reg.federation_key
    factory.pending_code_requests = None  # this agent reports its own with its first heartbeat
    factory.heartbeat_token_hash = token_digest(token)
    factory.heartbeat_interval = current_app.config["HEARTBEAT_INTERVAL"]
    factory.registered_at = factory.last_heartbeat = utcnow()
    factory.status = FactoryStatus.ONLINE.value
    record_audit(f"factory:{name}", "factory.registered" if created else "factory.re_registered", name,
                 hostname=hostname, port=port, device=reg.device, credential=admission.credential)
    db.session.commit()
    heartbeats.buffer_of(current_app).tokens.forget(name)  # its new token, at once in this process
    log.info("factory %s %s at %s:%d", name, "registered" if created else "re-registered", hostname, port)
    answer = {"factory_id": factory.id, "heartbeat_token": token, "heartbeat_interval": factory.heartbeat_interval}
    if issued is not None:
        answer["certificate_chain"] = issued.chain_pem  # the plant's certificate, then the federation CA's
    return Registered(answer, created)


def heartbeat(token: str, body: dict) -> dict:
    """The hot path: the token is checked against this process's cache of digests, the heartbeat goes to the
    process's buffer. Answers the interval and the released model the plant should use (DESIGN §10).
    Raises Unauthorized (401), PlantDecommissioned (403), UnknownPlant (404), ValidationError (400),
    RegistryUnavailable (503)."""
    name = plant_name(text(body, "factory_name", max_len=120))  # the rest is read once the token is proven
    buffer = heartbeats.buffer_of(current_app)
    plant = buffer.tokens.get(name)
    digest = token_digest(token)
    if plant is not None and not constant_time_equal(digest, plant.token_digest):
        plant = buffer.tokens.get(name, refresh=True)  # re-registered through another process?
    if plant is None:
        raise UnknownPlant(f"unknown factory {name[:120]!r}: register first")
    lifecycle.refuse_heartbeat(name, plant.decommissioned_at)  # 403 saying so: its token was revoked
    if not constant_time_equal(digest, plant.token_digest):
        raise Unauthorized("wrong heartbeat token for this factory")
    beat = Heartbeat.from_wire(body)
    pending = None if beat.pending_code_requests is None else [p.to_wire() for p in beat.pending_code_requests]
    changed = pending is not None and pending != plant.pending_code_requests
    answer = floor.on_heartbeat(plant.factory_id, name, beat.floor)  # its floor report; the model it should use
    if db.session.registry.has() and db.session().in_transaction():  # the floor report, or the token lookup
        db.session.commit()
    load = beat.current_load
    buffer.accept(heartbeats.AcceptedHeartbeat(
        plant.factory_id, utcnow(), beat.status, load["cpu_usage"], load["memory_usage"], load["disk_usage"],
        list(beat.active_experiments), pending if changed else None))
    if changed:
        plant.pending_code_requests = pending
    return {"ok": True, "heartbeat_interval": plant.heartbeat_interval, **answer}
