"""Security headers on every response, and ``Secure`` cookies when the site is served over HTTPS.

A pure ASGI middleware (it sees every response, including static files, errors and redirects):

- ``Content-Security-Policy``: scripts only from this site (no inline script, no ``on*=``
  handlers: page scripts live in ``web/static/*.js``), no framing (``frame-ancestors 'none'``),
  no plugins, forms post only here. Inline ``style`` attributes stay allowed.
- ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin``.
- With ``REMEDIUM_SECURE_COOKIES=true`` every ``Set-Cookie`` gets ``Secure`` (the setting says the
  site is served over HTTPS; a client's ``X-Forwarded-Proto`` does not).

FastAPI's Swagger UI (``/api/docs``) loads its script from a CDN and starts it with one inline
script; that page alone gets a policy naming the CDN and the SHA-256 of that exact script.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from remedium.settings import get_settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SWAGGER_CDN = "https://cdn.jsdelivr.net"
DOCS_PATHS = frozenset({"/api/docs"})
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: bytes) -> str:
    """The policy of the Swagger UI page: its CDN, and exactly the inline scripts it holds."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {SWAGGER_CDN} {hashes}; "
        f"style-src 'self' {SWAGGER_CDN}; img-src 'self' data: https://fastapi.tiangolo.com; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _secure_cookie(value: bytes) -> bytes:
    if b"secure" in [part.strip().lower() for part in value.split(b";")]:
        return value
    return value + b"; Secure"


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure_cookies = get_settings().secure_cookies
        if scope["path"] in DOCS_PATHS:
            await self._docs(scope, receive, send, secure_cookies)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(
                    message.get("headers", []), CONTENT_SECURITY_POLICY, secure_cookies
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send, secure: bool) -> None:
        # The page is small: hold it back to hash its inline script into the policy.
        start: Message | None = None
        body = b""

        async def hold(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body" and start is not None:
                body += message.get("body", b"")
                if message.get("more_body", False):
                    return
                start["headers"] = self._headers(
                    [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                    + [(b"content-length", str(len(body)).encode())],
                    docs_policy(body),
                    secure,
                )
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, hold)

    @staticmethod
    def _headers(
        headers: list[tuple[bytes, bytes]], policy: str, secure_cookies: bool
    ) -> list[tuple[bytes, bytes]]:
        names = {name.lower() for name, _ in headers}
        out = [
            (
                name,
                _secure_cookie(value)
                if secure_cookies and name.lower() == b"set-cookie"
                else value,
            )
            for name, value in headers
        ]
        if b"content-security-policy" not in names:
            out.append((b"content-security-policy", policy.encode()))
        out.extend(header for header in STATIC_HEADERS if header[0] not in names)
        return out
