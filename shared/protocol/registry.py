"""The registry's messages between a plant's agent and the dashboard (DESIGN §4, §10): `Registration`,
`Heartbeat` and the heartbeat's `FloorReport`, one definition for both sides.

The agent builds them and sends `to_wire()`; the dashboard reads the body with `from_wire`, which validates every
field as hostile, once (habit 17), and raises ValidationError naming the field (a 400). The wire form is the one
agents of this 0.x line already send (flat JSON objects; the floor report's fields sit in the heartbeat itself).
What needs the dashboard's own settings (the plant's address against DASHBOARD_ALLOW_PRIVATE_PLANTS, the
capabilities' feature schema, the identity key's signature) stays in dashboard.registry.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from shared.enums import FactoryStatus
from shared.errors import ValidationError
from shared.protocol.registry_fields import count, plant_name, policy, raw_key, record, text

HEARTBEAT_STATUSES = (FactoryStatus.ONLINE.value, FactoryStatus.BUSY.value, FactoryStatus.ERROR.value,
                      FactoryStatus.STOPPING.value)
MAX_ACTIVE_EXPERIMENTS = 50  # more are cut
MAX_PENDING_CODE_REQUESTS = 20  # more are cut, not refused: the agent sends the newest first
PENDING_CODE_REQUEST_FIELDS = {"id": 64, "requester": 200, "function": 120, "submitted_at": 40, "reason": 300}
LOAD_FIELDS = ("cpu_usage", "memory_usage", "disk_usage")
MAX_DB_ID = 2 ** 31 - 1  # factories.released_model_id is a 32-bit integer column (Postgres: larger is a 500)
MAX_SCORED_ROWS = 10 ** 15
MAX_ALERTS = 10 ** 9
MAX_DRIFT = 10 ** 6
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
FINGERPRINT_HEX = re.compile(r"[0-9a-f]{16}")  # shared.identity.fingerprint: a federation key's id
MODEL_KINDS = ("global", "personalized")  # personalized: the learning-quality issue's per-plant model
FLOOR_FIELDS = ("released_model", "scored_rows", "alerts_open", "drift", "drift_baseline", "alerts_opened", "alerts")
MAX_REPORTED_ALERTS = 20  # the newest alerts a heartbeat lists (more are cut, not refused)
MAX_ALERT_MACHINE = 64  # an alert's machine id is cut to this many characters
MAX_EPOCH = 10 ** 11  # seconds since 1970: an alert time beyond this (year 5138) is not a time


# --- registration --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Registration:
    """POST /register_factory. The agent signs `to_wire()` byte for byte (shared.identity.canonical_json)."""

    factory_name: str
    factory_hostname: str
    factory_port: int
    device: str
    status: str
    capabilities: dict
    orchestrator: dict  # {"email", "password"}: the account the dashboard drives the datasite with
    secagg_public_key: str | None
    identity_public_key: str  # the plant's Ed25519 identity key (hex); the client signs with its private half
    agent_version: str
    policy: dict | None = field(default_factory=dict)  # the plant's own policy (DESIGN §9), for operators to see
    certificate_request: str | None = None  # PEM CSR for the datasite's TLS key (factory_agent.tls); None: --dev_mode
    # the plant's trust mode (shared.experiment.trust): its policy's opt-out, and the fingerprint of the federation
    # key it pinned (None: none); both None from an agent that does not report them (unknown: not trusting)
    trust_dashboard: bool | None = None
    federation_key: str | None = None

    def to_wire(self) -> dict:
        return {"factory_name": self.factory_name, "factory_hostname": self.factory_hostname,
                "factory_port": self.factory_port, "device": self.device, "status": self.status,
                "capabilities": self.capabilities, "orchestrator": dict(self.orchestrator),
                "secagg_public_key": self.secagg_public_key, "identity_public_key": self.identity_public_key,
                "agent_version": self.agent_version, "policy": self.policy,
                "certificate_request": self.certificate_request, "trust_dashboard": self.trust_dashboard,
                "federation_key": self.federation_key}

    @property
    def orchestrator_email(self) -> str:
        return self.orchestrator["email"]

    @property
    def orchestrator_password(self) -> str:
        return self.orchestrator["password"]

    @classmethod
    def from_wire(cls, body: dict) -> "Registration":
        """The registration's fields, typed and bounded (the capabilities' schema and the address are checked
        by dashboard.registry.schema, the identity key's signature by dashboard.registry.identity)."""
        name = plant_name(text(body, "factory_name", max_len=120))
        hostname = text(body, "factory_hostname")
        port = body.get("factory_port")
        if port is None:
            raise ValidationError("factory_port", "is required")
        if isinstance(port, bool) or not isinstance(port, int):
            raise ValidationError("factory_port", f"must be int, got {type(port).__name__}")
        if not 1 <= port <= 65535:
            raise ValidationError("factory_port", f"must be a TCP port (1-65535), got {port}")
        capabilities = record(body, "capabilities", optional=True) or {}
        features = capabilities.get("features", [])
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ValidationError("capabilities.features", "must be a list of feature names")
        orchestrator = record(body, "orchestrator")
        email = text(orchestrator, "email")
        password = text(orchestrator, "password", max_len=1024)
        identity_key = raw_key(body, "identity_public_key")
        return cls(factory_name=name, factory_hostname=hostname, factory_port=port,
                   device=text(body, "device", optional=True, max_len=32) or "cpu",
                   status=text(body, "status", optional=True, max_len=16) or FactoryStatus.ONLINE.value,
                   capabilities=capabilities, orchestrator={"email": email, "password": password},
                   secagg_public_key=raw_key(body, "secagg_public_key"),
                   identity_public_key=identity_key,
                   agent_version=text(body, "agent_version", optional=True, max_len=32) or "0",
                   policy=policy(body),
                   certificate_request=body.get("certificate_request"),  # read by dashboard.registry.certificates
                   trust_dashboard=_trust_dashboard(body), federation_key=_federation_key(body))


def _trust_dashboard(body: dict) -> bool | None:
    value = body.get("trust_dashboard")
    if value is not None and not isinstance(value, bool):
        raise ValidationError("trust_dashboard", f"must be true, false or absent, got {str(value)[:40]!r}")
    return value


def _federation_key(body: dict) -> str | None:
    value = body.get("federation_key")
    if value is not None and not (isinstance(value, str) and FINGERPRINT_HEX.fullmatch(value)):
        raise ValidationError("federation_key", "must be the pinned federation key's fingerprint (16 lowercase hex "
                                                f"characters) or null, got {str(value)[:40]!r}")
    return value


# --- the heartbeat and its floor report ---------------------------------------------------------------------
@dataclass(frozen=True)
class ReportedModel:
    id: int
    sha256: str
    kind: str = "global"

    def to_wire(self) -> dict:
        return {"id": self.id, "sha256": self.sha256, "kind": self.kind}

    @classmethod
    def from_wire(cls, value) -> "ReportedModel | None":
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"id", "sha256", "kind"}:
            raise ValidationError("released_model", "must be an object with id, sha256 and kind")
        model_id, digest, kind = value.get("id"), value.get("sha256"), value.get("kind", "global")
        if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 < model_id <= MAX_DB_ID:
            raise ValidationError("released_model.id", f"must be a release id (a positive whole number), got "
                                                       f"{str(model_id)[:40]!r}")
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise ValidationError("released_model.sha256", "must be a SHA-256 digest as 64 lowercase hex characters")
        if kind not in MODEL_KINDS:
            raise ValidationError("released_model.kind", f"must be one of {', '.join(MODEL_KINDS)}, got "
                                                         f"{str(kind)[:40]!r}")
        return cls(model_id, digest, kind)


@dataclass(frozen=True)
class ReportedAlert:
    """One alert as a heartbeat reports it (DESIGN §10): its id at the plant, epoch-second times, the release that
    raised it; its machine and peak probability only when the plant's policy shares them (share_alert_details),
    else None: the detail stays at the plant (its loopback GET /alerts/<id>)."""

    id: int
    opened_at: float
    cleared_at: float | None
    model_id: int | None
    machine: str | None = None
    peak: float | None = None

    def to_wire(self) -> dict:
        wire = {"id": self.id, "opened_at": self.opened_at, "cleared_at": self.cleared_at, "model_id": self.model_id}
        if self.machine is not None or self.peak is not None:
            wire |= {"machine": self.machine, "peak": self.peak}
        return wire

    @classmethod
    def from_wire(cls, value, where: str) -> "ReportedAlert":
        if not isinstance(value, dict) or set(value) - {"id", "opened_at", "cleared_at", "model_id", "machine",
                                                        "peak"}:
            raise ValidationError(where, "must be an object with id, opened_at, cleared_at, model_id "
                                         "[, machine, peak]")
        alert_id, model_id = value.get("id"), value.get("model_id")
        if isinstance(alert_id, bool) or not isinstance(alert_id, int) or not 0 < alert_id <= MAX_DB_ID * 1024:
            raise ValidationError(where + ".id", f"must be a positive whole number, got {str(alert_id)[:40]!r}")
        if model_id is not None and (isinstance(model_id, bool) or not isinstance(model_id, int)
                                     or not 0 < model_id <= MAX_DB_ID):
            raise ValidationError(where + ".model_id", "must be a release id or null")
        machine = value.get("machine")
        if machine is not None and not isinstance(machine, str):
            raise ValidationError(where + ".machine", "must be text or null")
        opened_at = _number(value.get("opened_at"), where + ".opened_at", MAX_EPOCH)
        if opened_at is None:
            raise ValidationError(where + ".opened_at", "is required")
        return cls(alert_id, opened_at, _number(value.get("cleared_at"), where + ".cleared_at", MAX_EPOCH), model_id,
                   None if machine is None else _clip("".join(c for c in machine if c.isprintable()),
                                                      MAX_ALERT_MACHINE),
                   _number(value.get("peak"), where + ".peak", 1))


@dataclass(frozen=True)
class FloorReport:
    """What a plant reports from its floor (DESIGN §10): counts, a drift score and its baseline, and its newest
    alerts by id (never rows); None where the plant did not say. On the wire its fields sit in the heartbeat."""

    released_model: ReportedModel | None
    scored_rows: int | None
    alerts_open: int | None
    drift: float | None
    drift_baseline: float | None = None  # the drift score of the plant's validation split (the normal reading)
    alerts_opened: int | None = None  # alerts ever opened at the plant: counts those opened and cleared unseen
    alerts: tuple[ReportedAlert, ...] | None = None  # the newest MAX_REPORTED_ALERTS, newest first

    def to_wire(self) -> dict:
        return {"released_model": self.released_model.to_wire() if self.released_model else None,
                "scored_rows": self.scored_rows, "alerts_open": self.alerts_open, "drift": self.drift,
                "drift_baseline": self.drift_baseline, "alerts_opened": self.alerts_opened,
                "alerts": None if self.alerts is None else [a.to_wire() for a in self.alerts]}

    @classmethod
    def from_wire(cls, body: dict) -> "FloorReport | None":
        """The floor fields of a heartbeat, or None when it carries none of them (an agent without a model)."""
        if all(body.get(key) is None for key in FLOOR_FIELDS):
            return None
        drift, baseline = _drift(body, "drift"), _drift(body, "drift_baseline")
        alerts = body.get("alerts")
        if alerts is not None and not isinstance(alerts, list):
            raise ValidationError("alerts", "must be a list of alerts or null")
        return cls(released_model=ReportedModel.from_wire(body.get("released_model")),
                   scored_rows=count(body, "scored_rows", MAX_SCORED_ROWS),
                   alerts_open=count(body, "alerts_open", MAX_ALERTS), drift=drift, drift_baseline=baseline,
                   alerts_opened=count(body, "alerts_opened", MAX_ALERTS),
                   alerts=None if alerts is None else tuple(ReportedAlert.from_wire(a, f"alerts[{i}]")
                                                            for i, a in enumerate(alerts[:MAX_REPORTED_ALERTS])))


def _drift(body: dict, key: str) -> float | None:
    value = _number(body.get(key), key, MAX_DRIFT)
    return None if value is None else round(value, 6)


def _number(value, where: str, limit: float) -> float | None:
    """A finite number in [0, limit], or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= limit:
        raise ValidationError(where, f"must be a finite number between 0 and {limit}, got {str(value)[:40]!r}")
    return float(value)


@dataclass(frozen=True)
class PendingCodeRequest:
    """A code request the plant's approval policy left for its data owner, as a heartbeat reports it."""

    id: str
    requester: str
    function: str
    submitted_at: str
    reason: str

    def bounded(self) -> "PendingCodeRequest":
        """Each field cut to its limit, with '…' where it was cut."""
        return PendingCodeRequest(**{k: _clip(getattr(self, k), n) for k, n in PENDING_CODE_REQUEST_FIELDS.items()})

    def to_wire(self) -> dict:
        return {"id": self.id, "requester": self.requester, "function": self.function,
                "submitted_at": self.submitted_at, "reason": self.reason}


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit - 1] + "…"


def _load(load: dict, key: str) -> float | None:
    value = load.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValidationError(f"current_load.{key}", f"must be a percentage between 0 and 100, got {value!r}")
    return float(value)


def _pending_code_requests(body: dict) -> tuple[PendingCodeRequest, ...] | None:
    """At most 20 entries of five text fields, each truncated (dashboard side: cut, never refused). None when the
    heartbeat does not carry the field (an older agent)."""
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
        entries.append(PendingCodeRequest(**entry))
    return tuple(entries)


def _active_experiments(body: dict) -> tuple:
    value = body.get("active_experiments")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationError("active_experiments", f"must be list, got {type(value).__name__}")
    kept = value[:MAX_ACTIVE_EXPERIMENTS]
    for i, item in enumerate(kept):  # experiment ids (stored as JSON, shown on pages)
        if isinstance(item, bool) or not (isinstance(item, int) and 0 <= item <= MAX_DB_ID
                                          or isinstance(item, str) and len(item) <= 64):
            raise ValidationError(f"active_experiments[{i}]", "must be an experiment id")
    return tuple(kept)


@dataclass(frozen=True)
class Heartbeat:
    """POST /heartbeat, every heartbeat_interval seconds."""

    factory_name: str
    timestamp: str
    status: str
    current_load: dict  # cpu_usage, memory_usage, disk_usage: percentages, None where unknown
    active_experiments: tuple = ()
    # code requests the approval policy left for the data owner (at most 20, fields bounded); None: not reported
    pending_code_requests: tuple[PendingCodeRequest, ...] | None = ()
    floor: FloorReport | None = None  # None until a released model has arrived

    def to_wire(self) -> dict:
        body = {"factory_name": self.factory_name, "timestamp": self.timestamp, "status": self.status,
                "current_load": dict(self.current_load), "active_experiments": list(self.active_experiments),
                "pending_code_requests": None if self.pending_code_requests is None else
                [p.to_wire() for p in self.pending_code_requests]}
        return {**body, **(self.floor.to_wire() if self.floor else dict.fromkeys(FLOOR_FIELDS))}

    @classmethod
    def from_wire(cls, body: dict) -> "Heartbeat":
        name = plant_name(text(body, "factory_name", max_len=120))
        status = text(body, "status", optional=True, max_len=16) or FactoryStatus.ONLINE.value
        if status not in HEARTBEAT_STATUSES:
            raise ValidationError("status", f"must be one of {', '.join(sorted(HEARTBEAT_STATUSES))}")
        load = record(body, "current_load", optional=True) or {}
        return cls(factory_name=name, timestamp=text(body, "timestamp", optional=True, max_len=64) or "",
                   status=status, current_load={key: _load(load, key) for key in LOAD_FIELDS},
                   active_experiments=_active_experiments(body),
                   pending_code_requests=_pending_code_requests(body), floor=FloorReport.from_wire(body))
