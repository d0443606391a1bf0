"""Each plant's personalization result for an experiment (issue #15 item 4): the scores of the global, the
personalized and the local-only model on the plant's own validation (and test) split. Only scores: the plant
keeps both of its own models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.models.base import isoformat, utcnow


class PersonalResult(db.Model):
    __tablename__ = "personal_results"
    __table_args__ = (UniqueConstraint("experiment_id", "factory_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    factory_name: Mapped[str] = mapped_column(String(120))
    mode: Mapped[str] = mapped_column(String(16))  # finetune | fedper
    round_number: Mapped[int]  # the global model personalized (the best round by pooled validation F1)
    scores: Mapped[dict] = mapped_column(JSON)  # global / personalized / local -> val_f1, val_auc, test_*, threshold
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def to_dict(self) -> dict:
        return {"factory": self.factory_name, "mode": self.mode, "round": self.round_number,
                "scores": self.scores, "created_at": isoformat(self.created_at)}
