"""CSRF protection: a synchronizer token per web session, and a signed one before sign-in.

Every state-changing request (POST, PUT, PATCH, DELETE) authenticated by the session cookie must
carry the session's token, in the form field ``csrf_token`` or the header ``X-CSRF-Token``; the
authentication middleware checks it before any route runs. Bearer-token calls are exempt: a
browser never adds an ``Authorization`` header on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from markupsafe import Markup, escape
from starlette.requests import Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SIGNIN_NONCE_COOKIE = "remedium_signin"


def csrf_token(request: Request) -> str:
    """The token the current session's forms must echo ("" when not signed in)."""
    auth = getattr(request.state, "auth", None)
    token: str = getattr(auth, "csrf_token", "") or ""
    return token


def csrf_input(request: Request) -> Markup:
    """A hidden form field with the session's CSRF token, for ``{{ csrf_input(request) }}``."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, escape(csrf_token(request))
    )


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token with the one the request carries."""
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def new_signin_nonce() -> str:
    """A random value for the sign-in form's cookie."""
    return secrets.token_urlsafe(24)


def signin_token(key: str, nonce: str) -> str:
    """The sign-in form's CSRF token: the nonce cookie signed with the secret key."""
    return hmac.new(key.encode(), b"signin:" + nonce.encode(), hashlib.sha256).hexdigest()
