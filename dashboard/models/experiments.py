"""Experiments, their rounds, each plant's result per round, and the model version of each round."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.base import isoformat, utcnow
from shared.enums import RoundStatus
from shared.experiment import ExperimentConfig


class Experiment(db.Model):
    __tablename__ = "experiments"
    # SQLite otherwise gives a deleted newest experiment's id to the next one, and the audit log finds events by id
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict] = mapped_column(JSON)  # ExperimentConfig.to_dict() (shared.experiment); typed: .settings
    status: Mapped[str] = mapped_column(String(24), default="pending", index=True)
    current_round: Mapped[int] = mapped_column(default=0)  # rounds completed
    message: Mapped[str | None] = mapped_column(Text)  # what the experiment waits for, or why it failed
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # archived: hidden from the default list, kept whole (rounds, models, releases, audit); None when not
    archived_at: Mapped[datetime | None]
    archived_by: Mapped[str | None] = mapped_column(String(255))
    # round 0 (federated feature statistics): the merged schema and global scaler
    schema: Mapped[dict | None] = mapped_column(JSON)
    scaler: Mapped[dict | None] = mapped_column(JSON)
    baseline: Mapped[dict | None] = mapped_column(JSON)  # metrics of the initial model (round 0)
    # aggregation state carried between rounds: server optimiser moments, FedDyn's h (safetensors), reputation
    server_state: Mapped[bytes | None] = mapped_column(LargeBinary)
    reputation: Mapped[dict | None] = mapped_column(JSON)
    # central DP: the accountant's steps (shared.privacy.accounting): [sigma, 1.0] or ["laplace", epsilon] per round,
    # ["draw", sigma, q] per draw of plants; dp_sgd: {plant: Opacus accountant history}
    privacy_history: Mapped[list | None] = mapped_column(JSON)
    # claim of the round in progress, so that two schedulers never run the same round
    claim_owner: Mapped[str | None] = mapped_column(String(120))
    claim_until: Mapped[datetime | None]

    rounds: Mapped[list[Round]] = relationship(back_populates="experiment", order_by="Round.number",
                                               cascade="all, delete-orphan")

    @property
    def settings(self) -> ExperimentConfig:
        """The stored settings, typed."""
        return ExperimentConfig.from_dict(self.config)

    def validation_scores(self) -> dict[int, float]:
        """Completed round -> its model's pooled validation F1, for the rounds scored so far (early stopping and
        the best round: shared.experiment.stopping)."""
        from shared.experiment.stopping import validation_f1

        scores = {r.number: validation_f1(r.metrics) for r in self.rounds if r.status == RoundStatus.COMPLETED.value}
        return {n: s for n, s in scores.items() if s is not None}

    def summary(self) -> dict:
        return {"id": self.id, "name": self.name, "status": self.status, "current_round": self.current_round,
                "total_rounds": self.config.get("rounds"), "model_type": self.config.get("model_type"),
                "algorithm": self.config.get("algorithm"), "message": self.message,
                "created_at": isoformat(self.created_at), "started_at": isoformat(self.started_at),
                "finished_at": isoformat(self.finished_at), "archived_at": isoformat(self.archived_at)}


class Round(db.Model):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("experiment_id", "number", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    attempt: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    participants: Mapped[list] = mapped_column(JSON, default=list)
    dropouts: Mapped[dict] = mapped_column(JSON, default=dict)  # name -> reason
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)  # aggregate
    threshold: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[dict | None] = mapped_column(JSON)  # live: {"phase", "answered", "failed"}
    aggregation: Mapped[dict | None] = mapped_column(JSON)  # update norms, outliers, exclusions, reputation

    experiment: Mapped[Experiment] = relationship(back_populates="rounds")
    results: Mapped[list[RoundResult]] = relationship(back_populates="round", cascade="all, delete-orphan")

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def to_dict(self) -> dict:
        return {"number": self.number, "status": self.status, "participants": self.participants or [],
                "dropouts": sorted((self.dropouts or {}).keys()), "dropout_reasons": self.dropouts or {},
                "duration_s": self.duration_s, "metrics": self.metrics or {}, "threshold": self.threshold,
                "per_factory": {r.factory_name: r.metrics for r in self.results},
                "started_at": isoformat(self.started_at), "finished_at": isoformat(self.finished_at),
                "error": self.error, "progress": self.progress, "aggregation": self.aggregation}


class RoundResult(db.Model):
    """One plant's metadata for one round: sample counts, timings and metrics (never its weights)."""

    __tablename__ = "round_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    factory_name: Mapped[str] = mapped_column(String(120))
    num_samples: Mapped[int]
    steps: Mapped[int]
    train_seconds: Mapped[float | None]
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)

    round: Mapped[Round] = relationship(back_populates="results")


class ModelVersion(db.Model):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("experiment_id", "round_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    round_number: Mapped[int]
    weights: Mapped[bytes] = mapped_column(LargeBinary)  # safetensors
    threshold: Mapped[float] = mapped_column(default=0.5)
    # the secure sum that made this model, as its members signed it (shared.protocol.RoundTranscript.to_bytes):
    # what plants that verify models replay (dashboard.orchestration.proofs); None for a round that cannot be
    transcript: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
