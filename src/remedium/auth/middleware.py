"""Resolving the principal behind each request.

Until sign-in lands (issue 3), every request acts as a local administrator with every device
group in scope. This module is the one place that changes when real authentication arrives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from remedium.auth.principal import UNRESTRICTED, Principal, Right

LOCAL_ADMIN = Principal(
    user_id=None, name="local-admin", rights=frozenset(Right), scope=UNRESTRICTED
)


def install_authentication(app: FastAPI) -> None:
    """Attach the principal to ``request.state`` for every request."""

    @app.middleware("http")
    async def _attach_principal(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.principal = LOCAL_ADMIN
        return await call_next(request)
