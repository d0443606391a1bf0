"""Factories (plants) and their heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.base import isoformat, utcnow
from dashboard.models.drift import DriftReading
from shared.experiment.trust import PlantTrust, min_cohort_of, verify_models_of
from shared.identity import fingerprint

if TYPE_CHECKING:
    from dashboard.models.identity import FactoryRekey


class Factory(db.Model):
    __tablename__ = "factories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True, index=True)
    hostname: Mapped[str] = mapped_column(String(255))
    port: Mapped[int]
    device: Mapped[str] = mapped_column(String(32), default="cpu")
    status: Mapped[str] = mapped_column(String(16), default="online", index=True)
    capabilities: Mapped[dict] = mapped_column(JSON, default=dict)
    orchestrator_email: Mapped[str] = mapped_column(String(255))
    orchestrator_password_enc: Mapped[str] = mapped_column(Text)  # Fernet ciphertext
    secagg_public_key: Mapped[str | None] = mapped_column(String(128))
    # the plant's Ed25519 identity key (hex), bound by its first registration; None for a plant registered
    # before identities existed or imported from a file: its next registration needs an operator's approval
    identity_public_key: Mapped[str | None] = mapped_column(String(64))
    agent_version: Mapped[str | None] = mapped_column(String(32))
    # the federation administrator's certificate for this plant (shared.membership.MembershipCertificate's wire
    # form), relayed into every secure round it joins; the dashboard cannot make one (dashboard.registry.membership)
    membership_certificate: Mapped[dict | None] = mapped_column(JSON)
    heartbeat_token_hash: Mapped[str] = mapped_column(String(64))
    heartbeat_interval: Mapped[float] = mapped_column(default=30.0)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat: Mapped[datetime | None]
    current_load: Mapped[dict] = mapped_column(JSON, default=dict)
    active_experiments: Mapped[list] = mapped_column(JSON, default=list)
    # [{id, requester, function, submitted_at, reason}] the plant's agent left for its data owner (DESIGN §9);
    # None until an agent reports it
    pending_code_requests: Mapped[list | None] = mapped_column(JSON)
    policy: Mapped[dict | None] = mapped_column(JSON)  # the plant's own policy as it registered it (flat scalars)
    # its trust mode as it registered it (shared.experiment.trust): whether its policy trusts this dashboard, and the
    # fingerprint of the federation key it pinned; None from an agent that does not report them (unknown)
    trust_dashboard: Mapped[bool | None]
    federation_key: Mapped[str | None] = mapped_column(String(16))
    # the plant floor (DESIGN §10), as its last heartbeat reported it (dashboard.registry.floor): the model it scores
    # with, its counts and drift score; None until an agent reports them
    released_model_id: Mapped[int | None]
    released_model_sha256: Mapped[str | None] = mapped_column(String(64))
    released_model_kind: Mapped[str | None] = mapped_column(String(16))  # global | personalized
    scored_rows: Mapped[int | None] = mapped_column(BigInteger)
    alerts_open: Mapped[int | None]
    drift: Mapped[float | None]
    drift_baseline: Mapped[float | None]  # the drift score of the plant's validation split (dashboard.models.drift)
    alerts_opened: Mapped[int | None] = mapped_column(BigInteger)  # alerts ever opened at the plant
    # the plant's newest alerts, as its last heartbeat listed them (shared.protocol.registry.ReportedAlert wire form)
    recent_alerts: Mapped[list | None] = mapped_column(JSON)
    # what operators call it and where it is (dashboard.registry.lifecycle); the name stays its identity
    display_name: Mapped[str | None] = mapped_column(String(80))
    site: Mapped[str | None] = mapped_column(String(120))
    # retired by an admin (dashboard.registry.lifecycle, decision 0023): its history is kept, it takes part in no
    # experiment, its heartbeat is refused; only a fresh one-time enrolment token brings it back
    decommissioned_at: Mapped[datetime | None]
    decommissioned_by: Mapped[str | None] = mapped_column(String(255))

    heartbeats: Mapped[list[Heartbeat]] = relationship(back_populates="factory", cascade="all, delete-orphan",
                                                       passive_deletes=True)
    # registrations under this name that could not prove its identity key, waiting for an operator (identity.py)
    rekeys: Mapped[list[FactoryRekey]] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                      order_by="FactoryRekey.id")

    @property
    def decommissioned(self) -> bool:
        return self.decommissioned_at is not None

    @property
    def trust(self) -> PlantTrust:
        """Its trust mode (the badge on the pages, and the rule of dashboard.services.trust)."""
        return PlantTrust(self.name, self.trust_dashboard, self.federation_key, min_cohort_of(self.policy),
                          verify_models_of(self.policy))

    @property
    def drift_reading(self) -> DriftReading:
        return DriftReading(self.drift, self.drift_baseline)

    def to_dict(self) -> dict:
        caps = self.capabilities or {}
        return {"id": self.id, "factory_name": self.name, "factory_hostname": self.hostname,
                "factory_port": self.port, "device": self.device, "status": self.status,
                "last_heartbeat": isoformat(self.last_heartbeat), "current_load": self.current_load or {},
                "active_experiments": self.active_experiments or [], "registered_at": isoformat(self.registered_at),
                "agent_version": self.agent_version, "pending_code_requests": self.pending_code_requests,
                "policy": self.policy, "identity_key_fingerprint": fingerprint(self.identity_public_key),
                "trust_dashboard": self.trust_dashboard, "federation_key": self.federation_key,
                "trust": self.trust.to_dict(),
                "released_model": None if self.released_model_id is None else {
                    "id": self.released_model_id, "sha256": self.released_model_sha256,
                    "kind": self.released_model_kind},
                "display_name": self.display_name, "site": self.site,
                "decommissioned_at": isoformat(self.decommissioned_at), "decommissioned_by": self.decommissioned_by,
                "alerts_open": self.alerts_open, "scored_rows": self.scored_rows, "drift": self.drift,
                "alerts_opened": self.alerts_opened, "recent_alerts": self.recent_alerts or [],
                "drift_reading": self.drift_reading.to_dict(),
                "capabilities": {k: caps.get(k) for k in ("supported_models", "data_type", "num_samples",
                                                          "features", "splits", "source", "byzantine")}}


class Heartbeat(db.Model):
    __tablename__ = "heartbeats"
    __table_args__ = (Index("ix_heartbeats_factory_time", "factory_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    factory_id: Mapped[int] = mapped_column(ForeignKey("factories.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16))
    cpu_usage: Mapped[float | None]
    memory_usage: Mapped[float | None]
    disk_usage: Mapped[float | None]

    factory: Mapped[Factory] = relationship(back_populates="heartbeats")
