"""API shapes of users and tokens (never a password hash or a token secret, except once)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from remedium.auth.principal import Right


class UserOut(BaseModel):
    """An account as the API shows it."""

    id: int
    name: str
    display_name: str
    email: str
    rights: list[Right]
    all_device_groups: bool
    device_group_ids: list[int]
    active: bool
    created_at: datetime
    last_signin_at: datetime | None


class UserCreate(BaseModel):
    """A new account."""

    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=10, max_length=1000)
    rights: list[Right] = Field(default_factory=lambda: [Right.VIEW])
    all_device_groups: bool = False
    device_group_ids: list[int] = Field(default_factory=list)
    display_name: str = ""
    email: str = ""


class UserUpdate(BaseModel):
    """Changes to an account; omitted fields stay as they are."""

    rights: list[Right] | None = None
    all_device_groups: bool | None = None
    device_group_ids: list[int] | None = None
    active: bool | None = None
    display_name: str | None = None
    email: str | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1000)


class TokenOut(BaseModel):
    """A token as the API lists it: its prefix, never its secret."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    status: str


class TokenCreate(BaseModel):
    """A new token; administrators may create one for another user."""

    name: str = Field(default="", max_length=200)
    expires_days: int | None = Field(default=None, ge=1, le=3650)
    user_id: int | None = None


class TokenCreated(TokenOut):
    """The reply to creating a token: the only time the secret is shown."""

    token: str
