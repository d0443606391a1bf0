"""Plant identity (DESIGN §4): one-time enrolment tokens, re-keying requests waiting for an operator, and the
registration signatures already seen (replay protection)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.models.base import isoformat, utcnow
from shared.identity import fingerprint


class EnrolmentToken(db.Model):
    """A token an operator made for one plant name: shown once, kept as its SHA-256 digest, expiring,
    consumed by the first successful registration of that name."""

    __tablename__ = "enrolment_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    factory_name: Mapped[str] = mapped_column(String(120), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    def state(self, now: datetime | None = None) -> str:
        if self.used_at is not None:
            return "used"
        return "expired" if self.expires_at <= (now or utcnow()) else "unused"

    def to_dict(self) -> dict:
        return {"id": self.id, "factory_name": self.factory_name, "created_at": isoformat(self.created_at),
                "created_by": self.created_by, "expires_at": isoformat(self.expires_at),
                "used_at": isoformat(self.used_at), "state": self.state()}


class FactoryRekey(db.Model):
    """A registration under a known plant name that could not prove the plant's identity key: it waits here,
    with the keys, address and time it came with, until an operator approves it (or the plant proves its key)."""

    __tablename__ = "factory_rekeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    factory_id: Mapped[int] = mapped_column(ForeignKey("factories.id", ondelete="CASCADE"), index=True)
    identity_public_key: Mapped[str] = mapped_column(String(64))
    secagg_public_key: Mapped[str | None] = mapped_column(String(128))
    hostname: Mapped[str] = mapped_column(String(255))
    port: Mapped[int]
    reason: Mapped[str] = mapped_column(String(255))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(255))

    @property
    def identity_fingerprint(self) -> str | None:
        return fingerprint(self.identity_public_key)

    @property
    def secagg_fingerprint(self) -> str | None:
        return fingerprint(self.secagg_public_key)

    def to_dict(self) -> dict:
        return {"id": self.id, "identity_key_fingerprint": self.identity_fingerprint,
                "secagg_key_fingerprint": self.secagg_fingerprint, "hostname": self.hostname, "port": self.port,
                "reason": self.reason, "requested_at": isoformat(self.requested_at),
                "approved_at": isoformat(self.approved_at), "approved_by": self.approved_by}


class SeenSignature(db.Model):
    """SHA-256 of every registration signature accepted in the last few minutes: the same signed request sent
    again (a replay) is refused while its timestamp is still inside the accepted window."""

    __tablename__ = "registration_signatures"

    signature_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
