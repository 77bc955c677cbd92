"""Typed dependencies shared by every route (the request owns the transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from remedium.api.routing import read_engine
from remedium.auth.principal import Principal, Right, Scope
from remedium.db.session import session_factory


def get_engine_from_app(request: Request) -> Engine:
    """The engine the application was created with."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back on error.

    A read (GET) runs on the standby when one is configured (``api/routing.py``)."""
    session = session_factory(read_engine(request) or get_engine_from_app(request))()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit BEFORE the response is sent. With FastAPI's default ("request") the
# commit ran after the client already had its reply, so a redirect right after a write (sign-in,
# filing an exception) could be served from the database as it was before the write, and a
# failed commit was reported to nobody.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(request: Request) -> Principal:
    """The principal behind the request, resolved by the authentication middleware."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign-in required")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(right: Right) -> object:
    """A dependency that answers 403 unless the principal holds ``right``."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.has(right):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"the '{right.value}' right is required")
        return principal

    # Read by the route-walking security test to learn which right each route needs.
    check.required_right = right  # type: ignore[attr-defined]
    return Depends(check)


def get_scope(principal: PrincipalDep) -> Scope:
    """The device groups this request may see."""
    return principal.scope


ScopeDep = Annotated[Scope, Depends(get_scope)]
