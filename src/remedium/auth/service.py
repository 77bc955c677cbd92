"""Accounts, passwords, API tokens, web sessions and the sign-in throttle.

Secrets (passwords, tokens, session cookies) only ever pass through here on their way to a hash;
nothing in this module logs them or writes them to the audit history.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from remedium.audit.service import record
from remedium.auth.models import ApiToken, AuthSetting, SignInFailure, User, WebSession
from remedium.auth.principal import Principal, Right, Scope
from remedium.db.base import utcnow
from remedium.inventory.models import DeviceGroup

# Five failures within fifteen minutes lock the name (or the address) for fifteen minutes.
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE_TIMEOUT = timedelta(hours=2)
# last_used/last_seen are written at most this often, so reads do not turn into writes.
TOUCH_INTERVAL = timedelta(minutes=1)
# A marker that makes leaked tokens easy to find by secret scanners; not itself a secret.
TOKEN_PREFIX = "rmd_"  # noqa: S105

# Named roles are shorthands for sets of rights; a right's own name is a role too.
ROLES: dict[str, frozenset[Right]] = {
    "admin": frozenset(Right),
    "analyst": frozenset({Right.VIEW, Right.REMEDIATION, Right.EXCEPTIONS}),
    "itadmin": frozenset({Right.VIEW, Right.REMEDIATION}),
    "auditor": frozenset({Right.VIEW}),
    "view": frozenset({Right.VIEW}),
    "remediation": frozenset({Right.VIEW, Right.REMEDIATION}),
    "exceptions": frozenset({Right.VIEW, Right.EXCEPTIONS}),
    "inventory": frozenset({Right.VIEW, Right.INVENTORY}),
}

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.


@functools.cache
def _dummy_hash() -> str:
    """A hash to check a wrong user name against (as slow as a real check), made on first use:
    hashing at import time slowed every command by a quarter of a second."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AuthError(ValueError):
    """A request to change accounts or tokens that cannot be honoured (shown to the user)."""


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def rights_for_roles(roles: Iterable[str]) -> frozenset[Right]:
    """The rights that the named roles (or rights) grant; unknown names raise :class:`AuthError`."""
    rights: set[Right] = set()
    for role in roles:
        key = role.strip().lower().replace("-", "").replace("_", "")
        if key not in ROLES:
            raise AuthError(f"unknown role {role!r}; choose from {', '.join(sorted(ROLES))}")
        rights |= ROLES[key]
    return frozenset(rights)


def user_rights(user: User) -> frozenset[Right]:
    """The rights stored on ``user`` (unknown stored values are ignored)."""
    return frozenset(Right(r) for r in user.rights if r in Right._value2member_map_)


def principal_for(user: User) -> Principal:
    """The principal a request acts as when it is made by ``user``."""
    scope = (
        Scope(None)
        if user.all_device_groups
        else Scope(frozenset(group.id for group in user.device_groups))
    )
    return Principal(user_id=user.id, name=user.name, rights=user_rights(user), scope=scope)


def user_snapshot(user: User) -> dict[str, Any]:
    """What the audit history keeps of a user (never the password hash)."""
    return {
        "name": user.name,
        "display_name": user.display_name,
        "email": user.email,
        "rights": sorted(user.rights),
        "all_device_groups": user.all_device_groups,
        "device_groups": [group.name for group in user.device_groups],
        "active": user.active,
    }


def get_user(session: Session, user_id: int) -> User | None:
    """The user with id ``user_id``."""
    return session.get(User, user_id)


def get_user_by_name(session: Session, name: str) -> User | None:
    """The user called ``name`` (names are case-sensitive)."""
    return session.scalars(select(User).where(User.name == name)).first()


def list_users(session: Session) -> Sequence[User]:
    """Every account, active ones first, by name."""
    return session.scalars(select(User).order_by(User.active.desc(), User.name)).all()


def _groups(session: Session, group_ids: Iterable[int]) -> list[DeviceGroup]:
    ids = sorted(set(group_ids))
    groups = list(session.scalars(select(DeviceGroup).where(DeviceGroup.id.in_(ids))).all())
    if len(groups) != len(ids):
        missing = set(ids) - {group.id for group in groups}
        raise AuthError(f"unknown device group id(s): {sorted(missing)}")
    return groups


def groups_by_name(session: Session, names: Iterable[str]) -> list[int]:
    """The ids of the device groups called ``names``; unknown names raise :class:`AuthError`."""
    wanted = list(dict.fromkeys(names))
    found: dict[str, int] = {
        row.name: row.id
        for row in session.execute(
            select(DeviceGroup.name, DeviceGroup.id).where(DeviceGroup.name.in_(wanted))
        )
    }
    missing = [name for name in wanted if name not in found]
    if missing:
        known = session.scalars(select(DeviceGroup.name).order_by(DeviceGroup.name)).all()
        raise AuthError(
            f"unknown device group(s): {', '.join(missing)}; known: {', '.join(known) or 'none'}"
        )
    return [found[name] for name in wanted]


def validate_password(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < 10:
        raise AuthError("a password needs at least 10 characters")


def create_user(
    session: Session,
    *,
    actor: Principal | None,
    name: str,
    password: str,
    rights: Iterable[Right],
    device_group_ids: Iterable[int] = (),
    all_device_groups: bool = False,
    display_name: str = "",
    email: str = "",
    client_address: str = "",
) -> User:
    """Create an account and record ``user.create`` (flushes, never commits)."""
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise AuthError("a user name needs 1 to 100 characters and no spaces")
    if get_user_by_name(session, name) is not None:
        raise AuthError(f"a user called {name!r} already exists")
    validate_password(password)
    user = User(
        name=name,
        display_name=display_name or name,
        email=email,
        password_hash=hash_password(password),
        rights=sorted(r.value for r in rights),
        all_device_groups=all_device_groups,
        active=True,
    )
    user.device_groups = [] if all_device_groups else _groups(session, device_group_ids)
    session.add(user)
    session.flush()
    record(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after=user_snapshot(user),
        client_address=client_address,
    )
    return user


def update_user(
    session: Session,
    user: User,
    *,
    actor: Principal | None,
    rights: Iterable[Right] | None = None,
    device_group_ids: Iterable[int] | None = None,
    all_device_groups: bool | None = None,
    active: bool | None = None,
    display_name: str | None = None,
    email: str | None = None,
    password: str | None = None,
    client_address: str = "",
) -> User:
    """Change an account and record ``user.update`` with the before and after.

    Deactivating a user ends their web sessions; their tokens stop working with them.
    """
    before = user_snapshot(user)
    if rights is not None:
        user.rights = sorted(r.value for r in rights)
    if all_device_groups is not None:
        user.all_device_groups = all_device_groups
    if device_group_ids is not None:
        user.device_groups = _groups(session, device_group_ids)
    if user.all_device_groups:
        user.device_groups = []
    if display_name is not None:
        user.display_name = display_name
    if email is not None:
        user.email = email
    if active is not None:
        user.active = active
    if password is not None:
        validate_password(password)
        user.password_hash = hash_password(password)
    # An administrator cannot lock themselves out of administration by accident.
    if (
        actor is not None
        and actor.user_id == user.id
        and Right.ADMIN.value in before["rights"]
        and (not user.active or Right.ADMIN.value not in user.rights)
    ):
        raise AuthError("you cannot remove your own administrator right or deactivate yourself")
    session.flush()
    after = user_snapshot(user)
    if not user.active or password is not None:
        end_user_sessions(session, user.id)
    changes = {key: value for key, value in after.items() if before.get(key) != value}
    record(
        session,
        actor=actor,
        action="user.deactivate" if before["active"] and not user.active else "user.update",
        object_type="user",
        object_id=user.id,
        before={key: before[key] for key in changes},
        after=changes | ({"password": "changed"} if password is not None else {}),
        client_address=client_address,
    )
    return user


# --- API tokens ---------------------------------------------------------------------------


def create_token(
    session: Session,
    user: User,
    *,
    actor: Principal | None,
    name: str = "",
    expires_days: int | None = None,
    client_address: str = "",
) -> tuple[ApiToken, str]:
    """Create an API token for ``user``; returns the row and the secret, shown this once."""
    if expires_days is not None and expires_days <= 0:
        raise AuthError("a token's expiry must be at least one day away")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(
        user_id=user.id,
        name=name.strip() or "token",
        token_hash=_sha256(secret),
        prefix=secret[:12],
        created_at=now,
        expires_at=now + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(token)
    session.flush()
    record(
        session,
        actor=actor,
        action="token.create",
        object_type="token",
        object_id=token.id,
        after={
            "user": user.name,
            "name": token.name,
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
        client_address=client_address,
    )
    return token, secret


def list_tokens(session: Session, *, user_id: int | None = None) -> Sequence[ApiToken]:
    """Tokens of one user (or of everyone), newest first."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return session.scalars(query).all()


def token_status(token: ApiToken, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def revoke_token(
    session: Session, token: ApiToken, *, actor: Principal | None, client_address: str = ""
) -> ApiToken:
    """Revoke ``token`` at once and record ``token.revoke`` (revoking twice changes nothing)."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        record(
            session,
            actor=actor,
            action="token.revoke",
            object_type="token",
            object_id=token.id,
            before={"status": "active"},
            after={"status": "revoked", "prefix": token.prefix, "user_id": token.user_id},
            client_address=client_address,
        )
    return token


def authenticate_token(session: Session, secret: str) -> tuple[ApiToken, User] | None:
    """The live token and its active user behind ``secret``, or ``None``."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = session.scalars(select(ApiToken).where(ApiToken.token_hash == _sha256(secret))).first()
    if token is None:
        return None
    now = utcnow()
    if token_status(token, now) != "active":
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at > TOUCH_INTERVAL:
        token.last_used_at = now
        session.flush()
    return token, user


# --- web sessions -------------------------------------------------------------------------


def start_session(session: Session, user: User, *, client_address: str = "") -> str:
    """Open a web session for ``user``; returns the cookie value (stored only as a hash)."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id=_sha256(secret),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            client_address=client_address[:64],
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    user.last_signin_at = now
    session.flush()
    return secret


def resolve_session(session: Session, secret: str) -> tuple[WebSession, User] | None:
    """The live web session behind a cookie value and its active user, or ``None``."""
    if not secret or len(secret) > 200:
        return None
    web_session = session.get(WebSession, _sha256(secret))
    if web_session is None or web_session.revoked_at is not None:
        return None
    now = utcnow()
    if web_session.expires_at <= now or now - web_session.last_seen_at > SESSION_IDLE_TIMEOUT:
        return None
    user = session.get(User, web_session.user_id)
    if user is None or not user.active:
        return None
    if now - web_session.last_seen_at > TOUCH_INTERVAL:
        web_session.last_seen_at = now
        session.flush()
    return web_session, user


def end_session(session: Session, secret: str) -> WebSession | None:
    """Revoke the web session behind a cookie value (sign-out)."""
    web_session = session.get(WebSession, _sha256(secret)) if secret else None
    if web_session is not None and web_session.revoked_at is None:
        web_session.revoked_at = utcnow()
        session.flush()
    return web_session


def end_user_sessions(session: Session, user_id: int) -> None:
    """Revoke every open web session of a user (deactivation, password change)."""
    now = utcnow()
    for web_session in session.scalars(
        select(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
    ):
        web_session.revoked_at = now
    session.flush()


# --- sign-in and its throttle -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignInResult:
    """The outcome of a sign-in attempt: a user, or why not (and until when, if locked)."""

    user: User | None
    locked_until: datetime | None = None


def locked_until(
    session: Session, user_name: str, client_address: str, now: datetime | None = None
) -> datetime | None:
    """When the throttle lets this name and address try again, or ``None`` if it does now."""
    now = now or utcnow()
    window_start = now - THROTTLE_WINDOW
    until: datetime | None = None
    for column, value in (
        (SignInFailure.user_name, user_name),
        (SignInFailure.client_address, client_address),
    ):
        recent = session.scalars(
            select(SignInFailure.occurred_at)
            .where(column == value, SignInFailure.occurred_at > window_start)
            .order_by(SignInFailure.occurred_at.desc())
            .limit(THROTTLE_FAILURES)
        ).all()
        if len(recent) >= THROTTLE_FAILURES:
            # Free again once the oldest of the last five failures leaves the window.
            candidate = recent[-1] + THROTTLE_WINDOW
            until = candidate if until is None else max(until, candidate)
    return until


def authenticate(
    session: Session, user_name: str, password: str, *, client_address: str
) -> SignInResult:
    """Check a name and password under the throttle, and record the outcome in the history.

    Records ``auth.signin`` on success, ``auth.signin_failed`` (a failure counted by the
    throttle) or ``auth.signin_locked`` (refused without checking the password).
    """
    user_name = user_name.strip()[:100]
    client_address = client_address[:64]
    now = utcnow()
    until = locked_until(session, user_name, client_address, now)
    if until is not None:
        record(
            session,
            actor=None,
            actor_name=user_name or "(blank)",
            action="auth.signin_locked",
            object_type="user",
            reason=f"too many failed sign-ins; locked until {until.isoformat(timespec='seconds')}",
            client_address=client_address,
        )
        return SignInResult(user=None, locked_until=until)
    user = get_user_by_name(session, user_name)
    valid = verify_password(user.password_hash if user else _dummy_hash(), password)
    if user is None or not valid or not user.active:
        session.add(
            SignInFailure(occurred_at=now, user_name=user_name, client_address=client_address)
        )
        record(
            session,
            actor=None,
            actor_name=user_name or "(blank)",
            action="auth.signin_failed",
            object_type="user",
            object_id=user.id if user else None,
            reason="inactive account" if user and valid else "wrong user name or password",
            client_address=client_address,
        )
        return SignInResult(
            user=None, locked_until=locked_until(session, user_name, client_address, now)
        )
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    record(
        session,
        actor=principal_for(user),
        action="auth.signin",
        object_type="user",
        object_id=user.id,
        client_address=client_address,
    )
    return SignInResult(user=user)


# --- the secret key -----------------------------------------------------------------------


def secret_key(session: Session, configured: str = "") -> str:
    """The key that signs pre-sign-in form tokens: ``configured`` when set, else one generated
    once and kept in the ``auth_setting`` table (the same on SQLite and PostgreSQL)."""
    if configured:
        return configured
    row = session.get(AuthSetting, "secret_key")
    if row is not None:
        return row.value
    try:
        # Several server processes may meet the first sign-in at once: one key wins.
        with session.begin_nested():
            session.add(AuthSetting(key="secret_key", value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass
    value: str = session.scalars(
        select(AuthSetting.value).where(AuthSetting.key == "secret_key")
    ).one()
    return value


# --- the demo -----------------------------------------------------------------------------

DEMO_USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("admin", "remedium-admin", ("admin",)),
    ("analyst", "remedium-analyst", ("analyst",)),
    ("itadmin", "remedium-itadmin", ("itadmin",)),
    ("auditor", "remedium-auditor", ("auditor",)),
    ("scoped", "remedium-scoped", ("analyst",)),
)


def ensure_demo_users(session: Session) -> list[tuple[str, str, list[str]]]:
    """Create the demo accounts when missing; returns (name, password, roles) to print.

    ``scoped`` is an analyst limited to the first two device groups by name; the others see
    every group. The passwords are public (docs/security.md): for the demo only.
    """
    first_groups = list(
        session.scalars(select(DeviceGroup.id).order_by(DeviceGroup.name).limit(2)).all()
    )
    shown: list[tuple[str, str, list[str]]] = []
    for name, password, roles in DEMO_USERS:
        scoped = name == "scoped"
        if get_user_by_name(session, name) is None:
            create_user(
                session,
                actor=None,
                name=name,
                password=password,
                rights=rights_for_roles(roles),
                device_group_ids=first_groups if scoped else (),
                all_device_groups=not scoped,
                display_name=name.capitalize(),
            )
        shown.append((name, password, list(roles)))
    return shown


def count_active_admins(session: Session) -> int:
    """How many active accounts hold the administrator right."""
    users = session.scalars(select(User).where(User.active.is_(True))).all()
    return sum(1 for user in users if Right.ADMIN.value in user.rights)
