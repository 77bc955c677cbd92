"""Security headers on every response, and ``Secure`` cookies when the site is served over HTTPS.

A pure ASGI middleware (it sees every response, including static files, errors and redirects):

- ``Content-Security-Policy``: scripts only from this site (no inline script, no ``on*=``
  handlers: page scripts live in ``web/static/*.js``), no framing (``frame-ancestors 'none'``),
  no plugins, forms post only here. Inline ``style`` attributes stay allowed.
- ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin``.
- With ``REMEDIUM_SECURE_COOKIES=true`` every ``Set-Cookie`` gets ``Secure`` (the setting says the
  site is served over HTTPS; a client's ``X-Forwarded-Proto`` does not).

The API documentation (``/api/docs``) is served from this site too (``api/docs.py``), under
the same policy.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from remedium.settings import get_settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
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

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(
                    message.get("headers", []), CONTENT_SECURITY_POLICY, secure_cookies
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)

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
