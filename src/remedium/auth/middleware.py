"""Resolving the principal behind each request: the one switch between the world and the app.

For every request the middleware finds the principal (an ``Authorization: Bearer`` API token, or
the web-session cookie), and then:

- without one, anything but the public paths answers 401 (API) or redirects to ``/signin``;
- a principal without the ``view`` right gets 403 everywhere but sign-out;
- a state-changing request authenticated by the cookie must carry the session's CSRF token.

Routes then read ``request.state.principal`` through ``api.deps.PrincipalDep``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from remedium.auth import service
from remedium.auth.csrf import CSRF_FIELD, CSRF_HEADER, tokens_match
from remedium.auth.principal import Principal, Right
from remedium.db.session import transaction

SESSION_COOKIE = "remedium_session"
# Browsers fetch /favicon.ico on their own; redirecting it to /signin would void the sign-in form.
PUBLIC_PATHS = frozenset({"/api/v1/health", "/signin", "/favicon.ico"})
# Export files of the Defender-compatible API carry their own signed, expiring link
# (defender/exports.py), like Microsoft's SAS links.
PUBLIC_PREFIXES = ("/static/", "/schemas/", "/api/exports/")
# Reachable by a signed-in user who lacks the view right, so they can leave.
NO_VIEW_PATHS = frozenset({"/signout"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class RequestAuth:
    """How the request authenticated: ``session`` (cookie), ``token`` (bearer) or ``None``."""

    principal: Principal | None
    method: str | None = None
    csrf_token: str = ""
    token_id: int | None = None
    bad_token: bool = False


ANONYMOUS = RequestAuth(principal=None)


def is_public(path: str) -> bool:
    """True for the paths that answer without credentials."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def wants_json(request: Request) -> bool:
    """True for API calls, which get JSON errors instead of the sign-in page."""
    path = request.url.path
    return (
        path.startswith("/api/")
        or path == "/openapi.json"
        or (
            "application/json" in request.headers.get("accept", "")
            and "text/html" not in request.headers.get("accept", "")
        )
    )


def client_address(request: Request) -> str:
    """The peer address (a proxy's X-Forwarded-For is not trusted: it is client-controlled)."""
    return request.client.host if request.client else ""


def _resolve(engine: Engine, authorization: str, cookie: str) -> RequestAuth:
    with transaction(engine) as session:
        if authorization:
            scheme, _, secret = authorization.partition(" ")
            if scheme.lower() != "bearer":
                return RequestAuth(principal=None, bad_token=True)
            found = service.authenticate_token(session, secret.strip())
            if found is None:
                return RequestAuth(principal=None, bad_token=True)
            token, user = found
            return RequestAuth(service.principal_for(user), method="token", token_id=token.id)
        if cookie:
            resolved = service.resolve_session(session, cookie)
            if resolved is not None:
                web_session, user = resolved
                return RequestAuth(
                    service.principal_for(user),
                    method="session",
                    csrf_token=web_session.csrf_token,
                )
    return ANONYMOUS


async def _submitted_csrf_token(request: Request) -> tuple[str | None, bytes | None]:
    """The CSRF token the request carries (header or form field), and the body it read to find
    it (``None`` when it read none), which the route must then be given again."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header, None
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None, None
    body = await request.body()

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form()
    value = form.get(CSRF_FIELD)
    await form.close()
    return (value if isinstance(value, str) else None), body


def _deny(request: Request, status_code: int, detail: str) -> Response:
    path = request.url.path
    if path.startswith("/api/") and not path.startswith(("/api/v1/", "/api/docs")):
        # The Defender-compatible API answers Microsoft's error body (docs/defender-api.md).
        code = "Unauthorized" if status_code == 401 else "Forbidden"
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
        body = {"error": {"code": code, "message": detail, "target": ""}}
        return JSONResponse(body, status_code=status_code, headers=headers)
    if wants_json(request):
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
        return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
    return PlainTextResponse(detail, status_code=status_code)


class AuthenticationMiddleware:
    """Attach the principal to the request's state and refuse what it may not reach.

    Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which runs the rest of the
    application in a task of its own with streams between them on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        path = request.url.path
        auth = await run_in_threadpool(
            _resolve,
            scope["app"].state.engine,
            request.headers.get("authorization", ""),
            request.cookies.get(SESSION_COOKIE, ""),
        )
        request.state.auth = auth
        request.state.principal = auth.principal
        # Templates read it as ``csrf_token`` (web/templating.py) for every form they render.
        request.state.csrf_token = auth.csrf_token
        if is_public(path):
            await self.app(scope, receive, send)
            return
        refusal = _refusal(request, auth)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if request.method in UNSAFE_METHODS and auth.method == "session":
            submitted, body = await _submitted_csrf_token(request)
            if not tokens_match(auth.csrf_token, submitted):
                await _deny(
                    request, 403, "the form's CSRF token is missing or wrong; reload the page"
                )(scope, receive, send)
                return
            if body is not None:
                receive = _replaying(body, receive)
        await self.app(scope, receive, send)


def _refusal(request: Request, auth: RequestAuth) -> Response | None:
    """The answer to a request without a principal or without the view right, else ``None``."""
    path = request.url.path
    principal = auth.principal
    if principal is None:
        if auth.bad_token or wants_json(request):
            return _deny(request, 401, "sign-in required: the token is missing, revoked or expired")
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
    if not principal.has(Right.VIEW) and path not in NO_VIEW_PATHS:
        return _deny(request, 403, "the 'view' right is required")
    return None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives the body already read once more, then the client's messages."""
    pending = [body]

    async def replay() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replay


def install_authentication(app: FastAPI) -> None:
    """Resolve the principal of every request (see :class:`AuthenticationMiddleware`)."""
    app.add_middleware(AuthenticationMiddleware)
