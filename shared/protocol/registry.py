"""The registry's messages between a plant's agent and the dashboard (DESIGN §4, §10): `Registration`,
`Heartbeat` and the heartbeat's `FloorReport` (shared.protocol.floor), one definition for both sides.

The agent builds them and sends `to_wire()`; the dashboard reads the body with `from_wire`, which validates every
field as hostile, once (habit 17), and raises ValidationError naming the field (a 400). The wire form is the one
agents of this 0.x line already send (flat JSON objects; the floor report's fields sit in the heartbeat itself).
What needs the dashboard's own settings (the plant's address against DASHBOARD_ALLOW_PRIVATE_PLANTS, the
capabilities' feature schema, the identity key's signature) stays in dashboard.registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.enums import FactoryStatus
from shared.errors import ValidationError
# the floor report's names, also read from here by both sides
from shared.protocol.floor import FLOOR_FIELDS, MAX_DB_ID, MAX_REPORTED_ALERTS, MODEL_KINDS, SHA256_HEX  # noqa: F401
from shared.protocol.floor import FloorReport, ReportedAlert, ReportedModel  # noqa: F401
from shared.protocol.registry_fields import count, plant_name, policy, raw_key, record, text

HEARTBEAT_STATUSES = (FactoryStatus.ONLINE.value, FactoryStatus.BUSY.value, FactoryStatus.ERROR.value,
                      FactoryStatus.STOPPING.value)
MAX_ACTIVE_EXPERIMENTS = 50  # more are cut
MAX_PENDING_CODE_REQUESTS = 20  # more are cut, not refused: the agent sends the newest first
PENDING_CODE_REQUEST_FIELDS = {"id": 64, "requester": 200, "function": 120, "submitted_at": 40, "reason": 300}
LOAD_FIELDS = ("cpu_usage", "memory_usage", "disk_usage")
FINGERPRINT_HEX = re.compile(r"[0-9a-f]{16}")  # shared.identity.fingerprint: a federation key's id


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


# --- the heartbeat ---------------------------------------------------------------------
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
