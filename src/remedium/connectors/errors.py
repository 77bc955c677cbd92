"""What can go wrong when remedium talks to a ticketing system, sorted by what the caller should do.

The outbox retries a :class:`TransientError` later and gives up on a :class:`PermanentError`
(it needs an administrator: wrong credentials, a project that does not exist, a field the remote
refuses). Every message is written for a person and never holds a secret: connectors build their
messages from the method, the URL without its query string, the status and a short, scrubbed
excerpt of the reply.

    ConnectorError
    ├── TransientError ................. try again later (with back-off)
    │   ├── ConnectorTimeoutError ...... no reply within the caller's timeout
    │   ├── ConnectorUnreachableError .. connection refused, reset or dropped before a reply
    │   ├── ServerError ................ the remote answered 5xx (or 408)
    │   └── RateLimitedError ........... 429; ``retry_after`` in seconds when the remote said
    └── PermanentError ................. retrying will not help until someone changes something
        ├── AuthenticationError ........ 401/403, or the identity platform refused the credentials
        ├── RequestRejectedError ....... another 4xx: unknown project, table, priority, field...
        ├── UnexpectedReplyError ....... a 2xx whose body is not what the system documents
        └── NothingToSendError ......... the request holds nothing this system can act on
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every connector failure.

    ``system`` is the connector's name (``intune``, ``jira``...); ``status`` the HTTP status when
    the remote answered.
    """

    def __init__(self, message: str, *, system: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status

    def __str__(self) -> str:
        return f"{self.system}: {self.message}" if self.system else self.message


class TransientError(ConnectorError):
    """The call may succeed later: retry with back-off, looking up the ticket first."""


class ConnectorTimeoutError(TransientError):
    """No reply within the caller's timeout. The remote may still have made the ticket."""


class ConnectorUnreachableError(TransientError):
    """The connection was refused, reset, or closed before a reply came."""


class ServerError(TransientError):
    """The remote answered with a 5xx (or 408) status."""


class RateLimitedError(TransientError):
    """The remote answered 429 Too Many Requests."""

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, system=system, status=status)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """Retrying will not help: the configuration or the request must change first."""


class AuthenticationError(PermanentError):
    """The remote refused the credentials (401), or the account may not do this (403)."""


class RequestRejectedError(PermanentError):
    """The remote refused the request with a 4xx other than 401/403/408/429."""


class UnexpectedReplyError(PermanentError):
    """A successful status with a body that does not match the system's documented reply."""


class NothingToSendError(PermanentError):
    """The request holds nothing this system can act on (e.g. no Intune-managed devices)."""
