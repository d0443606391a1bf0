"""Factory registry: POST /register_factory, POST /heartbeat, GET /factories (DESIGN §4)."""

from __future__ import annotations

import logging
import math
import secrets

from flask import Blueprint, current_app, jsonify

from dashboard.registry import heartbeats, identity
from dashboard.registry import floor as plant_floor
from dashboard.registry.schema import validate_registration
from dashboard.api.validation import check_factory_name, json_body, require
from shared.errors import ValidationError
from dashboard.extensions import csrf, db, limiter, register_limit
from dashboard.registry.federation_ca import certificate_request_of
from dashboard.models import Factory, record_audit
from dashboard.models.base import utcnow
from dashboard.models.operators import token_digest
from dashboard.auth.roles import Unauthorized, bearer_token, operator_required
from dashboard.auth.security import constant_time_equal, encrypt
from shared.enums import FactoryStatus
from dashboard.errors import VersionConflict
from shared import __version__, release_line

log = logging.getLogger(__name__)
bp = Blueprint("factories_api", __name__)
csrf.exempt(bp)

# the agents this dashboard can drive: the same release line (major, and minor while major is 0: semantic
# versioning lets a 0.x minor change the protocol, as 0.4's histograms did)
SUPPORTED_AGENT_LINE = release_line(__version__)
HEARTBEAT_STATUSES = {FactoryStatus.ONLINE.value, FactoryStatus.BUSY.value, FactoryStatus.ERROR.value,
                      FactoryStatus.STOPPING.value}
MAX_PENDING_CODE_REQUESTS = 20  # more are cut, not refused: the agent sends the newest first
PENDING_CODE_REQUEST_FIELDS = {"id": 64, "requester": 200, "function": 120, "submitted_at": 40, "reason": 300}
MAX_POLICY_SETTINGS = 30
MAX_POLICY_NAME, MAX_POLICY_TEXT = 64, 200


def _load(body: dict, key: str, name: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValidationError(f"current_load.{key}", f"must be a percentage between 0 and 100, got {value!r}")
    return float(value)


def _pending_code_requests(body: dict) -> list[dict] | None:
    """The agent's pending code requests, bounded: at most 20 entries of five text fields, each truncated.
    None when the heartbeat does not carry the field (an older agent)."""
    reported = body.get("pending_code_requests")
    if reported is None:
        return None
    if not isinstance(reported, list):
        raise ValidationError("pending_code_requests", f"must be a list, got {type(reported).__name__}")
    entries = []
    for i, item in enumerate(reported[:MAX_PENDING_CODE_REQUESTS]):
        if not isinstance(item, dict):
            raise ValidationError(f"pending_code_requests[{i}]", f"must be an object, got {type(item).__name__}")
        entry = {}
        for key, limit in PENDING_CODE_REQUEST_FIELDS.items():
            value = item.get(key) if item.get(key) is not None else ""
            if not isinstance(value, str):
                raise ValidationError(f"pending_code_requests[{i}].{key}", f"must be text, got {type(value).__name__}")
            entry[key] = value[:limit]
        entries.append(entry)
    return entries


def _policy(body: dict) -> dict | None:
    """The plant's own policy (DESIGN §9) as it reports it: a flat object of at most 30 scalar settings."""
    policy = require(body, "policy", dict, optional=True)
    if policy is None:
        return None
    if len(policy) > MAX_POLICY_SETTINGS:
        raise ValidationError("policy", f"must hold at most {MAX_POLICY_SETTINGS} settings, got {len(policy)}")
    for name, value in policy.items():
        if len(name) > MAX_POLICY_NAME:
            raise ValidationError("policy", f"setting names are at most {MAX_POLICY_NAME} characters: {name[:40]!r}…")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"policy.{name}", f"must be a finite number, got {value!r}")
        if isinstance(value, str) and len(value) > MAX_POLICY_TEXT:
            raise ValidationError(f"policy.{name}", f"must be at most {MAX_POLICY_TEXT} characters")
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ValidationError(f"policy.{name}", f"must be a number, text, true/false or null, got "
                                                    f"{type(value).__name__}")
    return policy


@bp.post("/register_factory")
@limiter.limit(register_limit)  # enrollment-token guessing
def register_factory():
    identity.refuse_without_any_credential()
    body = json_body()
    validate_registration(body)  # address (no SSRF), capabilities schema, key formats: registration_schema.py
    name = check_factory_name(require(body, "factory_name", str, max_len=120))
    hostname = require(body, "factory_hostname", str)
    port = require(body, "factory_port", int)
    if not 1 <= port <= 65535:
        raise ValidationError("factory_port", f"must be a TCP port (1-65535), got {port}")
    device = require(body, "device", str, optional=True, max_len=32) or "cpu"
    capabilities = require(body, "capabilities", dict, optional=True) or {}
    features = capabilities.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise ValidationError("capabilities.features", "must be a list of feature names")
    orchestrator = require(body, "orchestrator", dict)
    email = require(orchestrator, "email", str)
    password = require(orchestrator, "password", str, max_len=1024)
    public_key = require(body, "secagg_public_key", str, optional=True, max_len=128)
    version = require(body, "agent_version", str, optional=True, max_len=32) or "0"
    policy = _policy(body)
    if release_line(version) != SUPPORTED_AGENT_LINE:
        raise VersionConflict(f"agent version {version} cannot be driven by this dashboard (supports "
                              f"{SUPPORTED_AGENT_LINE}.x); install the matching FactoryFL release")
    # TLS (dashboard.registry.federation_ca): the plant's certificate request, checked before anything changes
    certificate_request = certificate_request_of(current_app.config, body, name, hostname)

    # --- identity (dashboard.registry.identity): who may register this name, with which key --------------------
    claim = identity.IdentityClaim(name, identity.identity_public_key(body), public_key, hostname, port, body)
    factory = db.session.scalar(db.select(Factory).filter_by(name=name))
    admission = identity.admit(claim, factory)  # 401, or 409 with the request kept for an operator
    created = factory is None
    if created:
        factory = Factory(name=name)
        db.session.add(factory)
    identity.settle(admission, factory, claim)
    # --- from here on the caller is this plant -----------------------------------------------------
    issued = certificate_request.issue() if certificate_request else None  # signed for the admitted plant only
    capabilities["transport"] = "https" if issued else "http"  # how the dashboard reaches it (never the plant's say)

    token = secrets.token_urlsafe(32)
    factory.hostname, factory.port, factory.device = hostname, port, device
    factory.capabilities = capabilities
    factory.orchestrator_email = email
    factory.orchestrator_password_enc = encrypt(password)
    factory.secagg_public_key = public_key
    factory.agent_version, factory.policy = version, policy
    factory.pending_code_requests = None  # this agent reports its own with its first heartbeat
    factory.heartbeat_token_hash = token_digest(token)
    factory.heartbeat_interval = current_app.config["HEARTBEAT_INTERVAL"]
    factory.registered_at = factory.last_heartbeat = utcnow()
    factory.status = FactoryStatus.ONLINE.value
    record_audit(f"factory:{name}", "factory.registered" if created else "factory.re_registered", name,
                 hostname=hostname, port=port, device=device, credential=admission.credential)
    db.session.commit()
    heartbeats.buffer_of(current_app).tokens.forget(name)  # its new token, at once in this process
    log.info("factory %s %s at %s:%d", name, "registered" if created else "re-registered", hostname, port)
    answer = {"factory_id": factory.id, "heartbeat_token": token, "heartbeat_interval": factory.heartbeat_interval}
    if issued is not None:
        answer["certificate_chain"] = issued.chain_pem  # the plant's certificate, then the federation CA's
    return jsonify(answer), 201 if created else 200


@bp.post("/heartbeat")
@limiter.exempt  # authenticated by an unguessable token; the limiter's per-request work was ~15 % of a heartbeat
def heartbeat():
    """The hot path of the registry: the token is checked against this process's cache of digests and the
    heartbeat goes to the process's buffer, written in batches (dashboard.registry.heartbeats)."""
    token = bearer_token()
    if not token:
        raise Unauthorized("missing heartbeat token")
    body = json_body()
    name = require(body, "factory_name", str, max_len=120)
    buffer = heartbeats.buffer_of(current_app)
    plant = buffer.tokens.get(name)
    digest = token_digest(token)
    if plant is not None and not constant_time_equal(digest, plant.token_digest):
        plant = buffer.tokens.get(name, refresh=True)  # re-registered through another process?
    if plant is None:
        return jsonify({"error": f"unknown factory {name!r}: register first", "detail": None}), 404
    if not constant_time_equal(digest, plant.token_digest):
        raise Unauthorized("wrong heartbeat token for this factory")
    status = require(body, "status", str, optional=True, max_len=16) or FactoryStatus.ONLINE.value
    if status not in HEARTBEAT_STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(sorted(HEARTBEAT_STATUSES))}")
    load = require(body, "current_load", dict, optional=True) or {}
    cpu, mem, disk = (_load(load, k, k) for k in ("cpu_usage", "memory_usage", "disk_usage"))
    experiments = require(body, "active_experiments", list, optional=True) or []
    pending = _pending_code_requests(body)
    changed = pending is not None and pending != plant.pending_code_requests
    floor = plant_floor.on_heartbeat(plant.factory_id, name, body)  # its floor report; the model it should use (§10)
    if db.session.registry.has() and db.session().in_transaction():  # the floor report, or the token lookup
        db.session.commit()
    buffer.accept(heartbeats.AcceptedHeartbeat(
        plant.factory_id, utcnow(), status, cpu, mem, disk, experiments[:50], pending if changed else None))
    if changed:
        plant.pending_code_requests = pending
    return jsonify({"ok": True, "heartbeat_interval": plant.heartbeat_interval, **floor})


@bp.get("/factories")
@operator_required  # operators' view (viewer and up); agents never read it
def list_factories():
    from dashboard.services import plants

    return jsonify(plants.listing())  # this process's buffered heartbeats first (read your writes)
