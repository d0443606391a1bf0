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
    history). Which plants run it is their Deployment rows', not a flag of the release (decision 0022)."""

    __tablename__ = "releases"
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused (see Deployment)

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

    experiment = relationship("Experiment")

    def to_dict(self) -> dict:
        return {"id": self.id, "experiment_id": self.experiment_id, "round": self.round_number,
                "sha256": self.sha256, "size": self.size, "metrics": self.metrics or {}, "threshold": self.threshold,
                "plants": self.plants or [], "released_by": self.released_by,
                "released_at": isoformat(self.released_at)}


class Deployment(db.Model):
    """One change of what a plant should score with (decision 0022): a deploy, a roll back, a pin or an unpin,
    with who, when and the release it had before. A plant's newest row is its assignment; the rows before it are
    its history (a roll back undoes the newest deploy not yet undone: dashboard.services.deployments)."""

    __tablename__ = "deployments"
    # ids never reused, even on SQLite: the audit names deployments and releases by id (a deleted experiment's
    # releases go; the next release must not take their ids)
    __table_args__ = (Index("ix_deployments_plant", "factory_name", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    factory_name: Mapped[str] = mapped_column(String(120))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    previous_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="SET NULL"))
    pinned: Mapped[bool] = mapped_column(default=False)
    action: Mapped[str] = mapped_column(String(16))  # deploy | rollback | pin | unpin
    actor: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    def to_dict(self) -> dict:
        return {"plant": self.factory_name, "release_id": self.release_id,
                "previous_release_id": self.previous_release_id, "pinned": self.pinned, "action": self.action,
                "by": self.actor, "at": isoformat(self.at)}


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
