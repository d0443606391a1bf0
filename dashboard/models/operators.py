"""Operators (people who use the dashboard) and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.extensions import db
from dashboard.models.base import utcnow


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# What each role may do, lowest first; a role includes every role before it.
#   viewer: read pages and the API;  operator: also create and run experiments, check plants;
#   admin: also manage plants, enrolment tokens, operators and everyone's API tokens.
ROLES = ("viewer", "operator", "admin")


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


class Operator(UserMixin, db.Model):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # new operators see and do nothing but read until an admin gives them more (least privilege)
    role: Mapped[str] = mapped_column(String(16), default="viewer", server_default="viewer")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # disabled: cannot log in, its session ends and its API tokens are refused (kept, so enabling restores them)
    disabled_at: Mapped[datetime | None]
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="operator", cascade="all, delete-orphan")

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def is_active(self) -> bool:  # Flask-Login: a disabled operator is not logged in
        return self.disabled_at is None

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def can(self, role: str) -> bool:
        """Whether this operator holds `role` or a higher one."""
        return role_rank(self.role) >= role_rank(role) >= 0


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[bool] = mapped_column(default=False)
    operator: Mapped[Operator] = relationship(back_populates="tokens")

    @staticmethod
    def issue(operator: Operator, name: str, token: str | None = None) -> tuple["ApiToken", str]:
        token = token or secrets.token_urlsafe(32)
        return ApiToken(operator=operator, name=name, token_hash=token_digest(token)), token
