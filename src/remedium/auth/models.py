"""Tables of sign-in: users, their device groups, API tokens, web sessions, failed sign-ins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from remedium.db.base import Base, utcnow
from remedium.db.types import BigId, UtcDateTime
from remedium.inventory.models import DeviceGroup

# Which device groups a user without the all-groups flag may see and act on.
user_device_group = Table(
    "user_device_group",
    Base.metadata,
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("device_group_id", ForeignKey("device_group.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    """A local account: its password hash (argon2id), rights and device groups.

    ``rights`` holds :class:`remedium.auth.principal.Right` values. ``all_device_groups`` means
    every group, including groups created later; otherwise ``device_groups`` lists them.
    Accounts are deactivated, never deleted, so the audit history keeps its actors.
    """

    # "user" is a reserved word in PostgreSQL.
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    rights: Mapped[list[str]] = mapped_column(JSON, default=list)
    all_device_groups: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_signin_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    device_groups: Mapped[list[DeviceGroup]] = relationship(
        secondary=user_device_group, order_by=DeviceGroup.name
    )


class ApiToken(Base):
    """An API token of a user. Only the SHA-256 of the secret is kept; it is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # A 256-bit random secret needs no slow hash: SHA-256 cannot be brute-forced back.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, enough for a person to recognise it in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser. The cookie carries a random secret; only its SHA-256 is stored,
    so a copy of the database cannot be replayed as a cookie. Sign-out revokes the row."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    # The synchronizer token every state-changing form of this session must echo.
    csrf_token: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SignInFailure(Base):
    """One failed sign-in, counted by the throttle per user name and per client address."""

    __tablename__ = "signin_failure"
    __table_args__ = (
        Index("ix_signin_failure_name_at", "user_name", "occurred_at"),
        Index("ix_signin_failure_address_at", "client_address", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    user_name: Mapped[str] = mapped_column(String(100))
    client_address: Mapped[str] = mapped_column(String(64))


class AuthSetting(Base):
    """Generated secrets kept in the database (the session-signing key when none is configured)."""

    __tablename__ = "auth_setting"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
