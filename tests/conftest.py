"""Fixtures shared by the whole suite.

Every test that takes ``engine`` (or anything built on it) runs twice: on a fresh SQLite file and on
a fresh database in a throwaway PostgreSQL cluster that the suite starts itself.
``REMEDIUM_TEST_DATABASES=sqlite`` narrows a local run to SQLite; CI always runs both.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from remedium.db.migrate import upgrade_database
from remedium.db.session import make_engine, session_factory
from tests.support.orgs import TEMPLATES
from tests.support.pgcluster import PostgresCluster, create_database, start_cluster

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

DATABASES = [
    kind
    for kind in os.environ.get("REMEDIUM_TEST_DATABASES", "sqlite,postgresql").split(",")
    if kind
]
_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    """In CI (``CI=true``) the shared corpus must be there: a green run without it would say
    nothing about real files. Locally, corpus tests skip with a message instead."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"} and not CORPUS.is_dir():
        raise pytest.UsageError(
            f"CI=true but the shared corpus is not at {CORPUS}: corpus tests would be skipped"
        )


# The longest tests of the suite (tens of seconds each, measured with ``--durations``), started
# first so the two workers of ``make test`` finish together rather than one waiting on a long test
# it picked up last. Matched as node-id prefixes; everything else keeps its collection order.
RUN_FIRST = (
    "tests/demo/test_demo.py::test_same_seed_same_organisation",
    "tests/security/test_api_fuzz.py",
    "tests/web/test_analyst_ui.py::test_every_page_fits_1280_and_1920_and_passes_axe",
    "tests/jobs/",
    "tests/db/test_backup_restore.py",
    "tests/api/test_scale_out.py",
    "tests/importers/test_fidelity.py",
    "tests/importers/test_parallel_imports.py",
    "tests/importers/test_formats_c.py::test_cli_imports_the_new_formats",
    "tests/security/test_proxy_and_headers.py",
    "tests/security/test_route_walk.py",
)


def _run_first_rank(item: pytest.Item) -> int:
    for rank, prefix in enumerate(RUN_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(RUN_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cases marked ``sqlite_only`` are not collected on PostgreSQL (rather than skipped at run
    time), so the report counts only what really runs. The longest tests are put first."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_pg = callspec is not None and callspec.params.get("database_url") == "postgresql"
        (dropped if on_pg and item.get_closest_marker("sqlite_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = sorted(kept, key=_run_first_rank)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Passwords are hashed with argon2id's cheapest parameters in tests (in this process).

    The product's parameters (64 MiB, three passes) make each hash cost real CPU by design (up to
    0.7 s on this 2-core machine under load), and the suite creates accounts and signs in hundreds
    of times; the hashing code, the ``$argon2id$`` format and the verification are the same.
    Servers the tests start as separate processes keep the product's parameters."""
    from argon2 import PasswordHasher, profiles

    from remedium.auth import service

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
        yield


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """The suite's own PostgreSQL cluster, with a template database at the newest schema."""
    cluster = start_cluster()
    try:
        url = create_database(cluster, "remedium_template")
        engine = make_engine(url)
        upgrade_database(engine)
        engine.dispose()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest schema, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


# Scenarios built in this worker, by (database kind, scenario name): where the built database is
# (a SQLite file, or a PostgreSQL database name) and what the scenario returned.
_scenarios: dict[tuple[str, str], tuple[str, object]] = {}


def _template(
    request: pytest.FixtureRequest, kind: str, scenario: str | None
) -> tuple[str, object]:
    """The database a test's own database is copied from: the empty one at the newest schema, or
    the test's ``@pytest.mark.scenario`` built once per database kind (in this worker)."""
    if scenario is None:
        if kind == "sqlite":
            return str(request.getfixturevalue("sqlite_template")), None
        return "remedium_template", None
    key = (kind, scenario)
    if key not in _scenarios:
        build = TEMPLATES[scenario]
        if kind == "sqlite":
            empty: Path = request.getfixturevalue("sqlite_template")
            path = empty.parent / f"scenario-{scenario}.db"
            path.write_bytes(empty.read_bytes())
            location, url = str(path), f"sqlite:///{path}"
        else:
            cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
            location = f"scenario_{scenario.replace('-', '_')}"
            url = create_database(cluster, location, "remedium_template")
        engine = make_engine(url)
        try:
            result = build(engine)
            if kind == "sqlite":
                with engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()  # PostgreSQL copies a template only when no one is connected to it
        _scenarios[key] = (location, result)
    return _scenarios[key]


def _scenario_name(request: pytest.FixtureRequest) -> str | None:
    marker = request.node.get_closest_marker("scenario")
    return str(marker.args[0]) if marker else None


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, migrated database of each kind; with ``@pytest.mark.scenario(name)``,
    a fresh copy of that scenario (built once, see ``tests.support.orgs.TEMPLATES``)."""
    template, _ = _template(request, request.param, _scenario_name(request))
    if request.param == "sqlite":
        target = tmp_path / "remedium.db"
        target.write_bytes(Path(template).read_bytes())
        return f"sqlite:///{target}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return create_database(cluster, f"t{os.getpid()}_{next(_counter)}", template)


@pytest.fixture
def scenario(request: pytest.FixtureRequest, database_url: str) -> object:
    """What the test's ``@pytest.mark.scenario`` returned when it was built (plain ids, the same
    for every copy)."""
    name = _scenario_name(request)
    if name is None:
        raise pytest.UsageError(f"{request.node.nodeid} takes `scenario` without the mark")
    kind = request.node.callspec.params["database_url"]
    return _template(request, kind, name)[1]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database of each kind."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a fresh database; the test decides when to commit."""
    session = session_factory(engine)()
    yield session
    session.rollback()
    session.close()


class LiveServer:
    """The application served by uvicorn in a background thread, on a free loopback port."""

    def __init__(self, engine: Engine) -> None:
        from remedium.api.app import create_app
        from remedium.api.proxy import uvicorn_proxy_options
        from remedium.settings import get_settings

        self.config = uvicorn.Config(
            create_app(engine),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            **uvicorn_proxy_options(get_settings()),
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        # Forced: a browser page still open (a fixture torn down after this one) holds its
        # connections, and a graceful stop would wait on them until the join below gives up.
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(engine: Engine) -> Iterator[str]:
    """Base URL of the app served over real HTTP on this test's database."""
    server = LiveServer(engine)
    url = server.start()
    yield url
    server.stop()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _chromium_path() -> str:
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    raise RuntimeError("Debian's chromium package is missing: run `make test`, which installs it")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's headless Chromium, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=_chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh browser page (1400x900); screenshots go to test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave screenshots for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus of real scanner files; tests that need it skip when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS}: corpus tests skipped")
    return CORPUS


# --- Signing in (issue 3): every route but /api/v1/health and /signin needs credentials. ---


@pytest.fixture
def admin_token(engine: Engine) -> str:
    """The API token of a fresh administrator ``test-admin`` (all rights, all device groups)."""
    from tests.support.signin import user_with_token

    return user_with_token(engine, "test-admin")


@pytest.fixture
def admin_client(engine: Engine, admin_token: str) -> Iterator[object]:
    """A ``TestClient`` of the app on this test's database, signed in as an administrator
    through a bearer token (so no CSRF token is needed)."""
    from fastapi.testclient import TestClient

    from remedium.api.app import create_app

    with TestClient(
        create_app(engine), headers={"Authorization": f"Bearer {admin_token}"}
    ) as client:
        yield client


@pytest.fixture
def signed_in_page(page: object, live_server: str, engine: Engine) -> object:
    """A browser page on ``live_server``, signed in through the form as ``page-admin``."""
    from remedium.db.session import transaction
    from tests.support.signin import PASSWORD, make_user, sign_in_page

    with transaction(engine) as session:
        make_user(session, "page-admin")
    sign_in_page(page, live_server, "page-admin", PASSWORD)
    return page
