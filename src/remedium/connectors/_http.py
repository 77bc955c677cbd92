"""One place where HTTP replies and transport failures become :mod:`remedium.connectors.errors`.

Every connector sends through :class:`HttpCaller`, so the mapping (which failures are worth a
retry) and the scrubbing (no secret in any message or log line) are the same for all of them.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import httpx

from remedium.connectors.errors import (
    AuthenticationError,
    ConnectorError,
    ConnectorTimeoutError,
    ConnectorUnreachableError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    UnexpectedReplyError,
)

logger = logging.getLogger("remedium.connectors")

EXCERPT_CHARS = 300


def secret_forms(*secrets: str) -> list[str]:
    """The ways a secret may travel on the wire (raw, URL-encoded), so all of them are scrubbed."""
    forms: list[str] = []
    for secret in secrets:
        if secret:
            forms.extend({secret, quote(secret, safe=""), quote_plus(secret)})
    return forms


def basic_auth_forms(user: str, password: str) -> list[str]:
    """The ``user:password`` pair as it appears in a Basic ``Authorization`` header."""
    if not password:
        return []
    pair = f"{user}:{password}".encode()
    return [base64.b64encode(pair).decode("ascii")]


def safe_url(url: httpx.URL | str) -> str:
    """``url`` without credentials or query string: a webhook's query may hold a token."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def retry_after_seconds(value: str | None) -> float | None:
    """The ``Retry-After`` header in seconds (it may be a number or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class HttpCaller:
    """Sends requests for one connector and raises its errors, scrubbed of ``secrets()``."""

    def __init__(
        self,
        client: httpx.Client,
        system: str,
        secrets: Callable[[], Iterable[str]],
        *,
        url_label: str | None = None,
    ) -> None:
        self.client = client
        self.system = system
        self._secrets = secrets
        # The webhook's whole URL may be a credential (chat-style URLs embed one in the path).
        self._url_label = url_label

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        for secret in sorted(self._secrets(), key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _where(self, method: str, url: httpx.URL | str) -> str:
        return f"{method} {self._url_label or safe_url(url)}"

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request; a 2xx reply is returned, anything else raised as a ConnectorError."""
        where = self._where(method, url)
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectorTimeoutError(f"{where}: no reply in time", system=self.system) from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            # Refused, reset, or closed before a reply: the remote may or may not have acted.
            raise ConnectorUnreachableError(
                f"{where}: connection failed ({type(exc).__name__})", system=self.system
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectorUnreachableError(
                f"{where}: transport error ({type(exc).__name__})", system=self.system
            ) from exc
        logger.debug("%s %s -> %s", self.system, where, response.status_code)
        if response.is_success:
            return response
        raise self.error_for(response, where)

    def error_for(self, response: httpx.Response, where: str) -> ConnectorError:
        """The error a non-2xx reply stands for."""
        status = response.status_code
        # Scrub before cutting, so a secret cut in half by the excerpt's end cannot slip through.
        excerpt = " ".join(self.scrub(response.text).split())[:EXCERPT_CHARS]
        message = f"{where}: HTTP {status} {response.reason_phrase}"
        if excerpt:
            message += f": {excerpt}"
        if status == 429:
            seconds = retry_after_seconds(response.headers.get("Retry-After"))
            return RateLimitedError(message, system=self.system, status=status, retry_after=seconds)
        if status >= 500 or status == 408:
            return ServerError(message, system=self.system, status=status)
        if status in (401, 403):
            return AuthenticationError(message, system=self.system, status=status)
        return RequestRejectedError(message, system=self.system, status=status)

    def json(self, response: httpx.Response) -> dict[str, Any]:
        """The reply's JSON object, or :class:`UnexpectedReplyError`."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UnexpectedReplyError(
                f"{self._where(response.request.method, response.request.url)}: "
                f"HTTP {response.status_code} reply is not a JSON object",
                system=self.system,
                status=response.status_code,
            )
        return body

    def unexpected(self, response: httpx.Response, what: str) -> UnexpectedReplyError:
        """An :class:`UnexpectedReplyError` saying which documented field was missing."""
        return UnexpectedReplyError(
            f"{self._where(response.request.method, response.request.url)}: {what}",
            system=self.system,
            status=response.status_code,
        )
