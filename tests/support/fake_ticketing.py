"""FAKE ticketing systems for tests and the demo: Microsoft Graph, Jira, ServiceNow, a webhook.

THESE ARE NOT THE REAL SYSTEMS. Each is a small threaded HTTP server on 127.0.0.1 that implements
the requests and replies remedium's connectors use, as the vendors document them (paths, auth,
status codes, JSON shapes, error bodies), and nothing more. They exist so tests can run the real
connector code over real HTTP without leaving the machine, and can make it fail on purpose:

- ``fail(times, status)``: answer ``status`` (500 by default; 429 with ``retry_after``);
- ``delay(seconds, commit=...)``: sleep past the client's timeout, then drop the request or
  carry it out anyway (the "it timed out but the ticket exists" case);
- ``drop(times)``: close the connection without a reply;
- ``commit_then_fail(times, status=None)``: do the work (store the ticket), then answer
  ``status`` or, when ``None``, drop the connection: the crash-after-external-call case;
- ``stop()`` / ``start()``: refuse connections, then come back on the same port;
- ``chaos(rate, seed)``: from now on a random ``rate`` of the requests not matched by a fault
  above get one of the transient faults (500, 502, 503, 429, a dropped connection, or the work
  done and then a 500 or a dropped connection).

Each fault can be limited to a method and a path fragment. Every fake counts the tickets it holds
per idempotency key (``count_for(key)``), so tests can assert exactly one ticket per key.
"""

# The credentials below are the fakes' own made-up defaults, never real ones (S107), and each
# fake's request router returns once per route, which reads better than one exit (PLR0911).

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import re
import threading
import time
import uuid
from base64 import b64decode
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

FaultKind = Literal["status", "delay", "drop", "commit_then_status", "commit_then_drop"]


@dataclass
class Fault:
    """One injected failure, used ``remaining`` times on requests that match it."""

    kind: FaultKind
    remaining: int = 1
    status: int = 500
    seconds: float = 0.0
    commit: bool = False
    retry_after: str | None = None
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path in path


@dataclass
class FakeRequest:
    """One request as a fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def param(self, name: str, default: str = "") -> str:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body as JSON (``None`` when it is not JSON)."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def basic_auth(self) -> tuple[str, str] | None:
        """The (user, password) of a Basic ``Authorization`` header."""
        value = self.headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return None
        try:
            user, _, password = b64decode(value[6:]).decode().partition(":")
        except ValueError:
            return None
        return user, password

    def bearer(self) -> str:
        """The token of a Bearer ``Authorization`` header, or ``""``."""
        value = self.headers.get("Authorization", "")
        return value[7:] if value.startswith("Bearer ") else ""


@dataclass
class FakeResponse:
    """What a fake answers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        """The body's bytes (JSON unless it already is bytes)."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


_CHAOS_FAULTS: tuple[tuple[FaultKind, int], ...] = (
    ("status", 500),
    ("status", 502),
    ("status", 503),
    ("status", 429),
    ("drop", 0),
    ("commit_then_status", 500),
    ("commit_then_drop", 0),
)


class _DropConnectionError(Exception):
    """Raised inside a handler to close the connection without a reply."""


class FakeServer:
    """A threaded HTTP server on loopback with fault injection. Subclasses implement ``handle``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._chaos_rate = 0.0
        self._chaos_random = random.Random(0)
        self.latency = 0.0  # seconds every reply waits (so a killed client dies mid-call)
        self.chaos_faults = 0  # how many requests ``chaos`` spoiled
        self.requests: list[FakeRequest] = []

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on 127.0.0.1 (the same port as before after a ``stop()``)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per reply, without Nagle: otherwise each request waits on a delayed ACK.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                # Quiet: test output should show assertions, not access logs.
                return

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler, bind_and_activate=False)
        server.allow_reuse_address = True
        server.daemon_threads = True
        server.server_bind()
        server.server_activate()
        self._port = server.server_address[1]
        self._stopping.clear()
        self._server = server
        # A short poll keeps stop() quick: tests stop and start fakes many times.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start()``."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._port}"

    # --- faults --------------------------------------------------------------------------------

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def fail(
        self,
        times: int = 1,
        status: int = 500,
        *,
        retry_after: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and do nothing."""
        self._add(Fault("status", times, status, retry_after=retry_after, method=method, path=path))

    def delay(
        self,
        seconds: float,
        times: int = 1,
        *,
        commit: bool = False,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Sleep ``seconds`` before answering; then drop the request, or do it when ``commit``."""
        self._add(Fault("delay", times, seconds=seconds, commit=commit, method=method, path=path))

    def drop(self, times: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """Close the connection of the next ``times`` matching requests without a reply."""
        self._add(Fault("drop", times, method=method, path=path))

    def commit_then_fail(
        self,
        times: int = 1,
        *,
        status: int | None = 500,
        method: str | None = "POST",
        path: str | None = None,
    ) -> None:
        """Carry out the request (store the ticket), then answer ``status`` or drop (``None``)."""
        kind: FaultKind = "commit_then_drop" if status is None else "commit_then_status"
        self._add(Fault(kind, times, status or 500, method=method, path=path))

    def clear_faults(self) -> None:
        """Forget every pending fault (and stop the chaos)."""
        with self._lock:
            self._faults.clear()
            self._chaos_rate = 0.0

    def chaos(self, rate: float, *, seed: int = 0, latency: float = 0.0) -> None:
        """Give a random ``rate`` (0..1) of later requests a random transient fault, and make
        every reply wait ``latency`` seconds."""
        with self._lock:
            self._chaos_rate = rate
            self._chaos_random = random.Random(seed)
            self.latency = latency

    def _chaos_fault(self) -> Fault | None:
        if self._chaos_rate <= 0 or self._chaos_random.random() >= self._chaos_rate:
            return None
        kind, status = self._chaos_random.choice(_CHAOS_FAULTS)
        self.chaos_faults += 1
        return Fault(kind, 1, status, retry_after="0" if status == 429 else None)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
            return self._chaos_fault()

    # --- serving -------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = FakeRequest(
            handler.command, parts.path, parse_qs(parts.query), handler.headers, body
        )
        with self._lock:
            self.requests.append(request)
        fault = self._take_fault(request.method, request.path)
        if self.latency:
            self._stopping.wait(self.latency)
        try:
            response = self._apply(fault, request)
        except _DropConnectionError:
            handler.close_connection = True
            return
        payload = response.encoded()
        try:
            handler.send_response(response.status)
            for name, value in response.headers.items():
                handler.send_header(name, value)
            if payload:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            # The client gave up (timed out) before the reply: what a real server sees too.
            handler.close_connection = True

    def _apply(self, fault: Fault | None, request: FakeRequest) -> FakeResponse:
        if fault is None:
            return self._handle_safely(request)
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return FakeResponse(fault.status, self.error_body(fault.status), headers)
        if fault.kind == "drop":
            raise _DropConnectionError
        if fault.kind == "delay":
            self._stopping.wait(fault.seconds)
            if not fault.commit:
                raise _DropConnectionError
            return self._handle_safely(request)
        self._handle_safely(request)
        if fault.kind == "commit_then_drop":
            raise _DropConnectionError
        return FakeResponse(fault.status, self.error_body(fault.status))

    def _handle_safely(self, request: FakeRequest) -> FakeResponse:
        with self._lock:
            return self.handle(request)

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one request (called with the fake's lock held)."""
        raise NotImplementedError

    def error_body(self, status: int) -> Any:
        """The system's error body for an injected ``status``."""
        return {"error": f"injected HTTP {status}"}

    def count_for(self, idempotency_key: str) -> int:
        """How many tickets this fake holds for ``idempotency_key``."""
        raise NotImplementedError


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ================================================================================================
# Microsoft Graph (identity platform token endpoint + Intune security tasks, beta)
# ================================================================================================

GRAPH_TASKS_NAME = "deviceAppManagementTasks"
GRAPH_TASKS = f"/beta/deviceAppManagement/{GRAPH_TASKS_NAME}"
GRAPH_TASK_TYPES = {
    "#microsoft.graph.appVulnerabilityTask",
    "#microsoft.graph.securityConfigurationTask",
}
GRAPH_STATUSES = {"unknown", "pending", "active", "completed", "rejected"}


class FakeGraph(FakeServer):
    """FAKE Microsoft identity platform + Graph ``deviceAppManagementTasks``.

    The test plays the Intune administrator with :meth:`set_status` (``active`` = accepted,
    ``completed``, ``rejected``).
    """

    def __init__(
        self,
        *,
        tenant_id: str = "contoso.onmicrosoft.com",
        client_id: str = "11111111-2222-3333-4444-555555555555",
        client_secret: str = "fake-graph-client-secret~value",
        token_lifetime: int = 3599,
        page_size: int = 100,
    ) -> None:
        super().__init__()
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.tasks: dict[str, dict[str, Any]] = {}

    def set_status(self, task_id: str, status: str) -> None:
        """Play the Intune admin: accept (``active``), complete or reject a task."""
        with self._lock:
            self.tasks[task_id]["status"] = status
            self.tasks[task_id]["lastModifiedDateTime"] = _now()

    def revoke_tokens(self) -> None:
        """Make every issued token invalid (as a revoked consent or a rotated key would)."""
        with self._lock:
            self.tokens.clear()

    def count_for(self, idempotency_key: str) -> int:
        """Tasks whose notes carry ``[remedium:<key>]``."""
        marker = f"[remedium:{idempotency_key}]"
        with self._lock:
            return sum(1 for t in self.tasks.values() if marker in (t.get("creatorNotes") or ""))

    def error_body(self, status: int) -> Any:
        code = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(
            status, "InternalServerError"
        )
        return {"error": {"code": code, "message": f"injected HTTP {status}"}}

    @staticmethod
    def _graph_error(status: int, code: str, message: str) -> FakeResponse:
        return FakeResponse(status, {"error": {"code": code, "message": message}})

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path == f"/{self.tenant_id}/oauth2/v2.0/token" and request.method == "POST":
            return self._token(request)
        if request.path.endswith("/oauth2/v2.0/token"):
            return FakeResponse(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS90002: Tenant not found.",
                },
            )
        if not request.path.startswith(GRAPH_TASKS):
            return self._graph_error(404, "ResourceNotFound", "Resource not found")
        expiry = self.tokens.get(request.bearer())
        if expiry is None or expiry < time.monotonic():
            return self._graph_error(
                401, "InvalidAuthenticationToken", "Access token is empty or invalid."
            )
        rest = request.path[len(GRAPH_TASKS) :].strip("/")
        if not rest and request.method == "POST":
            return self._create(request)
        if not rest and request.method == "GET":
            return self._list(request)
        if rest and request.method == "GET":
            task = self.tasks.get(rest)
            if task is None:
                return self._graph_error(404, "ResourceNotFound", f"Task {rest} not found")
            return FakeResponse(200, task)
        return self._graph_error(405, "BadRequest", "Method not allowed")

    def _token(self, request: FakeRequest) -> FakeResponse:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return FakeResponse(
                400,
                {"error": "unsupported_grant_type", "error_description": "AADSTS70003"},
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return FakeResponse(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            )
        if form.get("scope") != "https://graph.microsoft.com/.default":
            return FakeResponse(400, {"error": "invalid_scope", "error_description": "AADSTS70011"})
        token = "fake-access-" + uuid.uuid4().hex
        self.tokens[token] = time.monotonic() + self.token_lifetime
        self.tokens_issued += 1
        return FakeResponse(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            },
        )

    def _create(self, request: FakeRequest) -> FakeResponse:
        body = request.json()
        if not isinstance(body, dict):
            return self._graph_error(400, "BadRequest", "Body is not a JSON object")
        odata_type = body.get("@odata.type")
        problems = []
        if odata_type not in GRAPH_TASK_TYPES:
            problems.append(
                "@odata.type must be an appVulnerabilityTask or securityConfigurationTask"
            )
        if body.get("priority", "none") not in {"none", "high", "low"}:
            problems.append("priority must be none, high or low")
        if body.get("status", "unknown") not in GRAPH_STATUSES:
            problems.append("invalid status")
        if body.get("category", "unknown") not in {"unknown", "advancedThreatProtection"}:
            problems.append("invalid category")
        mitigation = body.get("mitigationType", "unknown")
        if mitigation not in {"unknown", "update", "uninstall", "securityConfiguration"}:
            problems.append("invalid mitigationType")
        if problems:
            return self._graph_error(400, "BadRequest", "; ".join(problems))
        task_id = str(uuid.uuid4())
        task = {
            **body,
            "id": task_id,
            "createdDateTime": _now(),
            "lastModifiedDateTime": _now(),
        }
        self.tasks[task_id] = task
        context = f"{self.url}/beta/$metadata#deviceAppManagement/deviceAppManagementTasks/$entity"
        return FakeResponse(201, {"@odata.context": context, **task})

    def _list(self, request: FakeRequest) -> FakeResponse:
        top = int(request.param("$top", str(self.page_size)) or self.page_size)
        top = min(top, self.page_size)
        skip = int(request.param("$skiptoken", "0") or 0)
        selected = [s for s in request.param("$select").split(",") if s]
        tasks = sorted(self.tasks.values(), key=lambda t: str(t["createdDateTime"]))
        page = tasks[skip : skip + top]
        if selected:
            page = [{k: t.get(k) for k in ["@odata.type", "id", *selected]} for t in page]
        reply: dict[str, Any] = {
            "@odata.context": f"{self.url}/beta/$metadata#deviceAppManagement/{GRAPH_TASKS_NAME}",
            "value": page,
        }
        if skip + top < len(tasks):
            select = f"&$select={','.join(selected)}" if selected else ""
            reply["@odata.nextLink"] = (
                f"{self.url}{GRAPH_TASKS}?$top={top}&$skiptoken={skip + top}{select}"
            )
        return FakeResponse(200, reply)


# ================================================================================================
# Jira REST API v2
# ================================================================================================

JIRA_STATUSES: dict[str, tuple[str, str]] = {
    # status name -> (statusCategory key, statusCategory name), as Jira's default workflow has them
    "To Do": ("new", "To Do"),
    "In Progress": ("indeterminate", "In Progress"),
    "Done": ("done", "Done"),
    "Won't Do": ("done", "Done"),
}
JQL_LABEL = re.compile(r'^\s*labels\s*=\s*"([^"]+)"\s*(ORDER BY created (ASC|DESC))?\s*$', re.I)


class FakeJira(FakeServer):
    """FAKE Jira: ``/rest/api/2`` issue create/get, JQL search on labels, ``myself``, projects.

    Accepts Basic auth (``email`` + ``api_token``) or a Bearer ``personal_access_token``. The test
    moves issues with :meth:`transition`.
    """

    def __init__(
        self,
        *,
        email: str = "remedium-bot@example.com",
        api_token: str = "fake-jira-api-token+value",
        personal_access_token: str = "fake-jira-pat-value",
        projects: tuple[str, ...] = ("SEC",),
        issue_types: tuple[str, ...] = ("Task", "Bug"),
        priorities: tuple[str, ...] = ("Highest", "High", "Medium", "Low", "Lowest"),
    ) -> None:
        super().__init__()
        self.email = email
        self.api_token = api_token
        self.personal_access_token = personal_access_token
        self.projects = set(projects)
        self.issue_types = set(issue_types)
        self.priorities = set(priorities)
        self.issues: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(10000)
        self._numbers: dict[str, itertools.count[int]] = {}

    def transition(self, key: str, status: str) -> None:
        """Move an issue to ``status`` (To Do, In Progress, Done, Won't Do)."""
        category, category_name = JIRA_STATUSES[status]
        with self._lock:
            self.issues[key]["fields"]["status"] = {
                "name": status,
                "statusCategory": {"key": category, "name": category_name},
            }

    def count_for(self, idempotency_key: str) -> int:
        """Issues labelled with the key."""
        with self._lock:
            return sum(
                1 for i in self.issues.values() if idempotency_key in i["fields"].get("labels", [])
            )

    def error_body(self, status: int) -> Any:
        return {"errorMessages": [f"injected HTTP {status}"], "errors": {}}

    def _authenticated(self, request: FakeRequest) -> bool:
        if request.bearer():
            return hmac.compare_digest(request.bearer(), self.personal_access_token)
        return request.basic_auth() == (self.email, self.api_token)

    def handle(self, request: FakeRequest) -> FakeResponse:
        if not self._authenticated(request):
            return FakeResponse(
                401,
                b"Client must be authenticated to access this resource.",
                {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"},
            )
        path, method = request.path, request.method
        if path == "/rest/api/2/myself" and method == "GET":
            return FakeResponse(
                200,
                {
                    "accountId": "5b10ac8d82e05b22cc7d4ef5",
                    "emailAddress": self.email,
                    "displayName": "remedium bot",
                    "active": True,
                },
            )
        if path.startswith("/rest/api/2/project/") and method == "GET":
            key = path.rsplit("/", 1)[1]
            if key not in self.projects:
                return FakeResponse(
                    404,
                    {
                        "errorMessages": [f"No project could be found with key '{key}'."],
                        "errors": {},
                    },
                )
            return FakeResponse(200, {"id": "10000", "key": key, "name": f"{key} project"})
        if path == "/rest/api/2/issue" and method == "POST":
            return self._create(request)
        if path in ("/rest/api/2/search", "/rest/api/3/search/jql") and method == "GET":
            return self._search(request)
        if path.startswith("/rest/api/2/issue/") and method == "GET":
            key = path.rsplit("/", 1)[1]
            issue = self.issues.get(key) or next(
                (i for i in self.issues.values() if i["id"] == key), None
            )
            if issue is None:
                return FakeResponse(
                    404,
                    {
                        "errorMessages": [
                            "Issue does not exist or you do not have permission to see it."
                        ],
                        "errors": {},
                    },
                )
            return FakeResponse(200, issue)
        return FakeResponse(404, {"errorMessages": ["Not found"], "errors": {}})

    def _create(self, request: FakeRequest) -> FakeResponse:
        body = request.json()
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return FakeResponse(400, {"errorMessages": ["Can not deserialize"], "errors": {}})
        errors: dict[str, str] = {}
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in self.issue_types:
            errors["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if not summary:
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        if "priority" in fields and (fields["priority"] or {}).get("name") not in self.priorities:
            errors["priority"] = "Specify a valid priority name"
        labels = fields.get("labels", [])
        if any(" " in label for label in labels):
            errors["labels"] = "The label must not contain spaces."
        if "duedate" in fields and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(fields["duedate"])):
            errors["duedate"] = "Error parsing date string"
        if errors:
            return FakeResponse(400, {"errorMessages": [], "errors": errors})
        issue_id = str(next(self._ids))
        number = next(self._numbers.setdefault(str(project), itertools.count(1)))
        key = f"{project}-{number}"
        stored = dict(fields)
        stored["status"] = {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}}
        stored["created"] = _now()
        self_url = f"{self.url}/rest/api/2/issue/{issue_id}"
        self.issues[key] = {"id": issue_id, "key": key, "self": self_url, "fields": stored}
        return FakeResponse(201, {"id": issue_id, "key": key, "self": self_url})

    def _search(self, request: FakeRequest) -> FakeResponse:
        match = JQL_LABEL.match(request.param("jql"))
        if match is None:
            # The fake understands only the JQL remedium sends; anything else is a test bug.
            return FakeResponse(
                400,
                {
                    "errorMessages": ['Error in the JQL Query (fake supports labels = "x")'],
                    "errors": {},
                },
            )
        label = match.group(1)
        found = [i for i in self.issues.values() if label in i["fields"].get("labels", [])]
        found.sort(key=lambda i: int(i["id"]), reverse=(match.group(3) or "").upper() == "DESC")
        limit = int(request.param("maxResults", "50"))
        return FakeResponse(
            200,
            {"startAt": 0, "maxResults": limit, "total": len(found), "issues": found[:limit]},
        )


# ================================================================================================
# ServiceNow Table API
# ================================================================================================

SN_LABELS: dict[str, dict[str, str]] = {
    "incident": {
        "1": "New",
        "2": "In Progress",
        "3": "On Hold",
        "6": "Resolved",
        "7": "Closed",
        "8": "Canceled",
    },
    "sc_task": {
        "-5": "Pending",
        "1": "Open",
        "2": "Work in Progress",
        "3": "Closed Complete",
        "4": "Closed Incomplete",
        "7": "Closed Skipped",
    },
}
SN_PREFIX = {"incident": "INC", "sc_task": "SCTASK"}


class FakeServiceNow(FakeServer):
    """FAKE ServiceNow Table API for ``incident`` and ``sc_task`` with Basic auth.

    Understands ``sysparm_query`` conditions ``field=value`` joined by ``^`` and ``ORDERBY``,
    ``sysparm_limit``, ``sysparm_fields`` and ``sysparm_display_value``. The test moves records
    with :meth:`set_state`.
    """

    def __init__(
        self, *, username: str = "remedium.integration", password: str = "fake-sn-pass&word"
    ) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in SN_LABELS}
        self._numbers = itertools.count(10001)

    def set_state(self, table: str, sys_id: str, state: str) -> None:
        """Move a record to ``state`` (a number, as a string)."""
        with self._lock:
            self.records[table][sys_id]["state"] = state

    def count_for(self, idempotency_key: str) -> int:
        """Records in any table whose ``correlation_id`` is the key."""
        with self._lock:
            return sum(
                1
                for table in self.records.values()
                for record in table.values()
                if record.get("correlation_id") == idempotency_key
            )

    def error_body(self, status: int) -> Any:
        return {
            "error": {"message": f"injected HTTP {status}", "detail": None},
            "status": "failure",
        }

    @staticmethod
    def _error(status: int, message: str, detail: str | None = None) -> FakeResponse:
        return FakeResponse(
            status, {"error": {"message": message, "detail": detail}, "status": "failure"}
        )

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.basic_auth() != (self.username, self.password):
            return self._error(
                401, "User Not Authenticated", "Required to provide Auth information"
            )
        match = re.fullmatch(r"/api/now/table/([a-z0-9_]+)(?:/([0-9a-f]{32}|[^/]+))?", request.path)
        if match is None:
            return self._error(400, "Requested URI does not represent any resource")
        table, sys_id = match.group(1), match.group(2)
        if table not in self.records:
            return self._error(400, f"Invalid table {table}")
        if request.method == "POST" and sys_id is None:
            return self._create(request, table)
        if request.method == "GET" and sys_id is None:
            return self._query(request, table)
        if request.method == "GET":
            record = self.records[table].get(sys_id or "")
            if record is None:
                return self._error(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            return FakeResponse(200, {"result": self._render(request, table, record)})
        return self._error(405, "Method not Supported")

    def _render(self, request: FakeRequest, table: str, record: dict[str, Any]) -> dict[str, Any]:
        wanted = [f for f in request.param("sysparm_fields").split(",") if f]
        shown = {k: record.get(k, "") for k in wanted} if wanted else dict(record)
        mode = request.param("sysparm_display_value", "false")
        if mode == "false":
            return shown
        labels = SN_LABELS[table]
        rendered: dict[str, Any] = {}
        for key, value in shown.items():
            label = labels.get(str(value), str(value)) if key == "state" else value
            rendered[key] = {"value": value, "display_value": label} if mode == "all" else label
        return rendered

    def _create(self, request: FakeRequest, table: str) -> FakeResponse:
        body = request.json()
        if not isinstance(body, dict):
            return self._error(400, "Exception while reading request", "Invalid JSON")
        sys_id = uuid.uuid4().hex
        record = {k: "" if v is None else str(v) for k, v in body.items()}
        record.update(
            sys_id=sys_id,
            number=f"{SN_PREFIX[table]}{next(self._numbers):07d}",
            state=record.get("state") or "1",
            sys_created_on=_now(),
        )
        self.records[table][sys_id] = record
        return FakeResponse(201, {"result": self._render(request, table, record)})

    def _query(self, request: FakeRequest, table: str) -> FakeResponse:
        records = list(self.records[table].values())
        order: str | None = None
        for condition in [c for c in request.param("sysparm_query").split("^") if c]:
            if condition.startswith("ORDERBY"):
                order = condition.removeprefix("ORDERBY")
                continue
            name, sep, value = condition.partition("=")
            if not sep:
                return self._error(400, f"fake ServiceNow cannot parse condition {condition!r}")
            records = [r for r in records if r.get(name) == value]
        if order:
            descending = order.startswith("DESC")
            key = order.removeprefix("DESC")
            records.sort(key=lambda r: str(r.get(key, "")), reverse=descending)
        limit = int(request.param("sysparm_limit", "10000"))
        shown = [self._render(request, table, r) for r in records[:limit]]
        return FakeResponse(200, {"result": shown}, {"X-Total-Count": str(len(records))})


# ================================================================================================
# Generic webhook receiver
# ================================================================================================


class FakeWebhook(FakeServer):
    """FAKE webhook receiver: checks ``X-Remedium-Signature``, dedupes by ``Idempotency-Key``.

    ``POST /hooks/remedium`` takes deliveries; ``GET /tickets/{id}`` answers ``{"id", "state"}``.
    The test moves tickets with :meth:`set_state`.
    """

    def __init__(self, *, secret: str = "fake-webhook-signing-secret") -> None:
        super().__init__()
        self.secret = secret
        self.tickets: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.pings = 0
        self._numbers = itertools.count(1)

    @property
    def hook_url(self) -> str:
        """Where remedium should POST."""
        return f"{self.url}/hooks/remedium"

    @property
    def status_url_template(self) -> str:
        """The ``status_url_template`` to configure for reading state back."""
        return f"{self.url}/tickets/{{id}}"

    def set_state(self, ticket_id: str, state: str) -> None:
        """Move a ticket to ``state`` (the receiver's own word)."""
        with self._lock:
            self.tickets[ticket_id]["state"] = state

    def count_for(self, idempotency_key: str) -> int:
        """Tickets made for the key (deliveries of the same key are deduped)."""
        with self._lock:
            return sum(1 for t in self.tickets.values() if t["idempotency_key"] == idempotency_key)

    def _signed(self, request: FakeRequest) -> bool:
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), request.body, hashlib.sha256).hexdigest()
        )
        return hmac.compare_digest(expected, request.headers.get("X-Remedium-Signature", ""))

    def handle(self, request: FakeRequest) -> FakeResponse:
        if not self._signed(request):
            return FakeResponse(401, {"error": "signature mismatch"})
        if request.method == "GET" and request.path.startswith("/tickets/"):
            ticket = self.tickets.get(request.path.rsplit("/", 1)[1])
            if ticket is None:
                return FakeResponse(404, {"error": "no such ticket"})
            return FakeResponse(200, {"id": ticket["id"], "state": ticket["state"]})
        if request.method != "POST" or request.path != "/hooks/remedium":
            return FakeResponse(404, {"error": "not found"})
        key = request.headers.get("Idempotency-Key", "")
        payload = request.json()
        if not key or not isinstance(payload, dict):
            return FakeResponse(400, {"error": "Idempotency-Key and a JSON body are required"})
        self.deliveries.append(payload)
        if payload.get("event") == "ping":
            self.pings += 1
            return FakeResponse(200, {"ok": True})
        if payload.get("event") != "remediation.requested":
            # Notifications (e.g. exception.expiring) are acknowledged, not turned into tickets.
            return FakeResponse(200, {"ok": True})
        if key in self.by_key:
            ticket = self.tickets[self.by_key[key]]
            return FakeResponse(200, self._public(ticket))
        ticket_id = f"WH-{next(self._numbers)}"
        ticket = {"id": ticket_id, "idempotency_key": key, "state": "received", "payload": payload}
        self.tickets[ticket_id] = ticket
        self.by_key[key] = ticket_id
        return FakeResponse(201, self._public(ticket))

    def _public(self, ticket: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": ticket["id"],
            "url": f"{self.url}/tickets/{ticket['id']}",
            "state": ticket["state"],
        }
