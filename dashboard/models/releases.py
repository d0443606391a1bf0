"""Released models (DESIGN §10): the bundle of one round made the model its experiment's plants use, and what
each plant reports from its floor over time (counts and a drift score, never rows)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.base import isoformat, utcnow


class Release(db.Model):
    """One release of a round's bundle. Releasing the same round again makes a new row (the registry keeps the
    history); rolling back activates an earlier row. At most one release per experiment is active."""

    __tablename__ = "releases"
    __table_args__ = (Index("ix_releases_active", "active", "activated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    round_number: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    # exactly the bytes that were hashed: a plant downloads what the operator released, whatever happens later
    bundle: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)  # the round's pooled metrics at release
    threshold: Mapped[float | None]
    plants: Mapped[list] = mapped_column(JSON, default=list)  # the experiment's plants: who may download it
    released_by: Mapped[str] = mapped_column(String(255))
    released_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=True)
    activated_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_by: Mapped[str] = mapped_column(String(255))

    experiment = relationship("Experiment")

    def to_dict(self) -> dict:
        return {"id": self.id, "experiment_id": self.experiment_id, "round": self.round_number,
                "sha256": self.sha256, "size": self.size, "metrics": self.metrics or {}, "threshold": self.threshold,
                "plants": self.plants or [], "released_by": self.released_by,
                "released_at": isoformat(self.released_at), "active": self.active,
                "activated_at": isoformat(self.activated_at), "activated_by": self.activated_by}


class FloorSample(db.Model):
    """A plant's floor report (scored rows, open alerts, drift) when it changed: the history behind the charts."""

    __tablename__ = "floor_samples"
    __table_args__ = (Index("ix_floor_samples_factory_time", "factory_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    factory_id: Mapped[int] = mapped_column(ForeignKey("factories.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    scored_rows: Mapped[int | None] = mapped_column(BigInteger)
    alerts_open: Mapped[int | None]
    drift: Mapped[float | None]

    def to_dict(self) -> dict:
        return {"at": isoformat(self.at), "scored_rows": self.scored_rows, "alerts_open": self.alerts_open,
                "drift": self.drift}
