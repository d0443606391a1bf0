"""The federation's membership documents as the dashboard relays them (shared.membership): each plant's
certificate (on its Factory row) and the newest revocation list. The dashboard signs neither: it keeps what the
federation's administrator uploaded and hands it on; each plant checks them against the key it pinned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.models.base import utcnow


class RevocationRecord(db.Model):
    __tablename__ = "membership_revocations"

    id: Mapped[int] = mapped_column(primary_key=True)  # one row (id 1): the newest list uploaded
    serial: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[dict] = mapped_column(JSON)  # shared.membership.RevocationList's wire form
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
