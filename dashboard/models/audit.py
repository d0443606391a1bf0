"""Who did what when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.models.base import isoformat, utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    def to_dict(self) -> dict:
        return {"at": isoformat(self.at), "actor": self.actor, "action": self.action, "target": self.target,
                "detail": self.detail or {}}


def record_audit(actor: str, action: str, target: str | None = None, **detail) -> None:
    """Add an audit event to the current session (committed with the change it describes)."""
    db.session.add(AuditEvent(actor=actor, action=action, target=target, detail=detail))
