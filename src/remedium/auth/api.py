"""``/api/v1/users`` (administrators) and ``/api/v1/tokens`` (own tokens; administrators: all)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status

from remedium.api.deps import PrincipalDep, SessionDep, require
from remedium.auth import service
from remedium.auth.middleware import client_address
from remedium.auth.models import ApiToken, User
from remedium.auth.principal import Principal, Right
from remedium.auth.schemas import (
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["users and tokens"])
AdminDep = Annotated[Principal, require(Right.ADMIN)]


def user_out(user: User) -> UserOut:
    """The API shape of ``user``."""
    return UserOut(
        id=user.id,
        name=user.name,
        display_name=user.display_name,
        email=user.email,
        rights=sorted(service.user_rights(user)),
        all_device_groups=user.all_device_groups,
        device_group_ids=[group.id for group in user.device_groups],
        active=user.active,
        created_at=user.created_at,
        last_signin_at=user.last_signin_at,
    )


def token_out(token: ApiToken) -> TokenOut:
    """The API shape of ``token`` (without its secret)."""
    return TokenOut(
        id=token.id,
        user_id=token.user_id,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        status=service.token_status(token),
    )


def _bad_request(error: service.AuthError) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(error))


@router.get("/users", response_model=list[UserOut])
def list_users(session: SessionDep, _admin: AdminDep) -> list[UserOut]:
    """Every account."""
    return [user_out(user) for user in service.list_users(session)]


@router.get("/users/me", response_model=UserOut)
def me(session: SessionDep, principal: PrincipalDep) -> UserOut:
    """The account behind this request."""
    user = service.get_user(session, principal.user_id) if principal.user_id else None
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no account behind this request")
    return user_out(user)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserCreate, request: Request, session: SessionDep, admin: AdminDep
) -> UserOut:
    """Add an account."""
    try:
        user = service.create_user(
            session,
            actor=admin,
            name=body.name,
            password=body.password,
            rights=body.rights,
            device_group_ids=body.device_group_ids,
            all_device_groups=body.all_device_groups,
            display_name=body.display_name,
            email=body.email,
            client_address=client_address(request),
        )
    except service.AuthError as error:
        raise _bad_request(error) from error
    return user_out(user)


def _user(session: SessionDep, user_id: int) -> User:
    user = service.get_user(session, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    return user


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: int, session: SessionDep, _admin: AdminDep) -> UserOut:
    """One account."""
    return user_out(_user(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(
    user_id: int, body: UserUpdate, request: Request, session: SessionDep, admin: AdminDep
) -> UserOut:
    """Change an account's rights, device groups, details, password or status."""
    user = _user(session, user_id)
    try:
        service.update_user(
            session,
            user,
            actor=admin,
            rights=body.rights,
            device_group_ids=body.device_group_ids,
            all_device_groups=body.all_device_groups,
            active=body.active,
            display_name=body.display_name,
            email=body.email,
            password=body.password,
            client_address=client_address(request),
        )
    except service.AuthError as error:
        raise _bad_request(error) from error
    return user_out(user)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(
    session: SessionDep, principal: PrincipalDep, user_id: int | None = None
) -> list[TokenOut]:
    """The caller's tokens; administrators may list anyone's (``user_id``) or all."""
    if not principal.has(Right.ADMIN):
        user_id = principal.user_id
        if user_id is None:
            return []
    return [token_out(token) for token in service.list_tokens(session, user_id=user_id)]


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, request: Request, session: SessionDep, principal: PrincipalDep
) -> TokenCreated:
    """Create a token (for the caller; administrators: for ``user_id``). The secret is in this
    reply only."""
    target_id = body.user_id if body.user_id is not None else principal.user_id
    if target_id != principal.user_id and not principal.has(Right.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only administrators create others' tokens")
    user = service.get_user(session, target_id) if target_id is not None else None
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    try:
        token, secret = service.create_token(
            session,
            user,
            actor=principal,
            name=body.name,
            expires_days=body.expires_days,
            client_address=client_address(request),
        )
    except service.AuthError as error:
        raise _bad_request(error) from error
    return TokenCreated(**token_out(token).model_dump(), token=secret)


def _visible_token(session: SessionDep, principal: Principal, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != principal.user_id and not principal.has(Right.ADMIN)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such token")
    return token


@router.get("/tokens/{token_id}", response_model=TokenOut)
def get_token(token_id: int, session: SessionDep, principal: PrincipalDep) -> TokenOut:
    """One token (own, or any for administrators)."""
    return token_out(_visible_token(session, principal, token_id))


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut)
def revoke_token(
    token_id: int, request: Request, session: SessionDep, principal: PrincipalDep
) -> TokenOut:
    """Revoke a token at once."""
    token = _visible_token(session, principal, token_id)
    service.revoke_token(session, token, actor=principal, client_address=client_address(request))
    return token_out(token)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def delete_token(
    token_id: int, request: Request, session: SessionDep, principal: PrincipalDep
) -> TokenOut:
    """Same as revoking: tokens are kept (revoked) for the history."""
    return revoke_token(token_id, request, session, principal)
