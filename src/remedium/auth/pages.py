"""Pages: sign-in and sign-out, the user's API tokens, and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.responses import HTMLResponse

from remedium.api.deps import PrincipalDep, SessionDep, require
from remedium.audit.service import record
from remedium.auth import service
from remedium.auth.csrf import SIGNIN_NONCE_COOKIE, new_signin_nonce, signin_token, tokens_match
from remedium.auth.middleware import SESSION_COOKIE, client_address
from remedium.auth.models import ApiToken, User
from remedium.auth.principal import Principal, Right
from remedium.auth.templating import render
from remedium.inventory.models import DeviceGroup
from remedium.settings import get_settings

router = APIRouter(include_in_schema=False)

RIGHT_LABELS = {
    Right.VIEW.value: "View data",
    Right.REMEDIATION.value: "Remediation handling",
    Right.EXCEPTIONS.value: "Exception handling",
    Right.INVENTORY.value: "Inventory (device value, tags, device groups)",
    Right.ADMIN.value: (
        "Administrator (users, device groups, connectors, settings, global exceptions)"
    ),
}


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def secure_request(request: Request) -> bool:
    """True when the site is configured for HTTPS or the request came over TLS.

    A client's ``X-Forwarded-Proto`` counts only through a trusted proxy
    (``REMEDIUM_TRUSTED_PROXIES``), which sets the request's scheme (api/proxy.py).
    """
    return get_settings().secure_cookies or request.url.scheme == "https"


def _signin_page(
    request: Request,
    session: SessionDep,
    *,
    next_url: str,
    username: str = "",
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    nonce = new_signin_nonce()
    key = service.secret_key(session, get_settings().secret_key)
    response = render(
        request,
        "signin.html",
        {
            "signin_token": signin_token(key, nonce),
            "next": next_url,
            "username": username,
            "message": message,
        },
        status_code=status_code,
    )
    response.set_cookie(
        SIGNIN_NONCE_COOKIE,
        nonce,
        httponly=True,
        samesite="lax",
        secure=secure_request(request),
        path="/signin",
    )
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, session: SessionDep, next: str = "/") -> Response:
    """The sign-in form (a signed-in user goes straight on)."""
    if getattr(request.state, "principal", None) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _signin_page(request, session, next_url=safe_next(next))


@router.post("/signin", response_class=HTMLResponse)
def signin(
    *,
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the name and password under the throttle; on success open a session."""
    next_url = safe_next(next)
    nonce = request.cookies.get(SIGNIN_NONCE_COOKIE, "")
    key = service.secret_key(session, get_settings().secret_key)
    if not nonce or not tokens_match(signin_token(key, nonce), csrf_token):
        return _signin_page(
            request,
            session,
            next_url=next_url,
            username=username,
            message="The sign-in form expired. Please try again.",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    result = service.authenticate(
        session, username, password, client_address=client_address(request)
    )
    if result.user is None:
        if result.locked_until is not None:
            until = result.locked_until.strftime("%H:%M UTC")
            return _signin_page(
                request,
                session,
                next_url=next_url,
                username=username,
                message=f"Too many failed sign-ins. Sign-in is locked until {until}.",
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        return _signin_page(
            request,
            session,
            next_url=next_url,
            username=username,
            message="Wrong user name or password.",
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    # A new session id at every sign-in: a cookie planted before sign-in is worthless after it.
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        service.end_session(session, old)
    secret = service.start_session(session, result.user, client_address=client_address(request))
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(service.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_request(request),
        path="/",
    )
    response.delete_cookie(SIGNIN_NONCE_COOKIE, path="/signin")
    return response


@router.post("/signout")
def signout(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """End the web session (the middleware has checked the form's CSRF token)."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    if service.end_session(session, secret) is not None:
        record(
            session,
            actor=principal,
            action="auth.signout",
            object_type="user",
            object_id=principal.user_id,
            client_address=client_address(request),
        )
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- API tokens -----------------------------------------------------------------------------


def _tokens_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    new_secret: str = "",
    new_name: str = "",
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    tokens = service.list_tokens(session, user_id=principal.user_id)
    response = render(
        request,
        "tokens.html",
        {
            "tokens": tokens,
            "statuses": {token.id: service.token_status(token) for token in tokens},
            "new_secret": new_secret,
            "new_name": new_name,
            "message": message,
        },
        status_code=status_code,
    )
    # The page may hold a secret: no cache keeps a copy.
    response.headers["Cache-Control"] = "no-store"
    return response


def _own_user(session: SessionDep, principal: Principal) -> User:
    user = service.get_user(session, principal.user_id) if principal.user_id else None
    if user is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a signed-in user has tokens")
    return user


@router.get("/settings/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """The signed-in user's tokens: prefix, created, expires, last used; create and revoke."""
    return _tokens_page(request, session, principal)


@router.post("/settings/tokens", response_class=HTMLResponse)
def create_token_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    name: Annotated[str, Form()] = "",
    expires_days: Annotated[str, Form()] = "",
) -> Response:
    """Create a token for the signed-in user and show it, once."""
    user = _own_user(session, principal)
    try:
        days = int(expires_days) if expires_days.strip() else None
        _token, secret = service.create_token(
            session,
            user,
            actor=principal,
            name=name,
            expires_days=days,
            client_address=client_address(request),
        )
    except (ValueError, service.AuthError) as error:
        message = str(error) if isinstance(error, service.AuthError) else "days must be a number"
        return _tokens_page(request, session, principal, message=message, status_code=400)
    return _tokens_page(request, session, principal, new_secret=secret, new_name=name)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token_page(
    request: Request, token_id: int, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Revoke one of the signed-in user's tokens (administrators: anyone's)."""
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != principal.user_id and not principal.has(Right.ADMIN)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such token")
    service.revoke_token(session, token, actor=principal, client_address=client_address(request))
    return RedirectResponse("/settings/tokens", status_code=303)


# --- users (administrators) -------------------------------------------------------------------

AdminDep = Annotated[Principal, require(Right.ADMIN)]


def _all_groups(session: SessionDep) -> list[DeviceGroup]:
    return list(session.scalars(select(DeviceGroup).order_by(DeviceGroup.name)).all())


def _users_page(
    request: Request,
    session: SessionDep,
    *,
    message: str = "",
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "users.html",
        {
            "users": service.list_users(session),
            "groups": _all_groups(session),
            "rights": list(Right),
            "right_labels": RIGHT_LABELS,
            "edited": None,
            "message": message,
            "notice": notice,
        },
        status_code=status_code,
    )


@router.get("/settings/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, _admin: AdminDep) -> Response:
    """Every account, with a form to add one."""
    return _users_page(request, session)


def _rights(values: list[str]) -> list[Right]:
    return [Right(value) for value in values if value in Right._value2member_map_]


@router.post("/settings/users", response_class=HTMLResponse)
def create_user_page(
    *,
    request: Request,
    session: SessionDep,
    admin: AdminDep,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    display_name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    rights: Annotated[list[str] | None, Form()] = None,
    all_device_groups: Annotated[str, Form()] = "",
    device_group_ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    """Add an account."""
    try:
        with session.begin_nested():
            service.create_user(
                session,
                actor=admin,
                name=name,
                password=password,
                rights=_rights(rights or []),
                device_group_ids=device_group_ids or [],
                all_device_groups=bool(all_device_groups),
                display_name=display_name,
                email=email,
                client_address=client_address(request),
            )
    except service.AuthError as error:
        return _users_page(request, session, message=str(error), status_code=400)
    return RedirectResponse("/settings/users", status_code=303)


def _edited(session: SessionDep, user_id: int) -> User:
    user = service.get_user(session, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    return user


@router.get("/settings/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: int, session: SessionDep, _admin: AdminDep) -> Response:
    """One account's rights, groups and status, for editing."""
    return render(
        request,
        "user_edit.html",
        {
            "edited": _edited(session, user_id),
            "groups": _all_groups(session),
            "rights": list(Right),
            "right_labels": RIGHT_LABELS,
            "message": "",
        },
    )


@router.post("/settings/users/{user_id}", response_class=HTMLResponse)
def update_user_page(
    *,
    request: Request,
    user_id: int,
    session: SessionDep,
    admin: AdminDep,
    display_name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
    rights: Annotated[list[str] | None, Form()] = None,
    all_device_groups: Annotated[str, Form()] = "",
    device_group_ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    """Change an account's rights, groups, details or status (deactivate)."""
    user = _edited(session, user_id)
    try:
        with session.begin_nested():
            service.update_user(
                session,
                user,
                actor=admin,
                rights=_rights(rights or []),
                device_group_ids=device_group_ids or [],
                all_device_groups=bool(all_device_groups),
                active=bool(active),
                display_name=display_name,
                email=email,
                password=password or None,
                client_address=client_address(request),
            )
    except service.AuthError as error:
        session.refresh(user)
        return render(
            request,
            "user_edit.html",
            {
                "edited": user,
                "groups": _all_groups(session),
                "rights": list(Right),
                "right_labels": RIGHT_LABELS,
                "message": str(error),
            },
            status_code=400,
        )
    return RedirectResponse("/settings/users", status_code=303)
