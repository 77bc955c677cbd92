"""Several server processes on one database, and reads from a streaming standby (issue 15).

``remedium serve --workers 2`` in a subprocess: sign-in throttling, sessions and CSRF hold across
its processes (they live in the database). With ``REMEDIUM_DATABASE_READ_URL`` pointing at a hot
standby of a throwaway primary (``pg_basebackup -R``), reads come from the standby and the client
that just wrote reads the primary.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import Engine

from remedium.db.migrate import upgrade_database
from remedium.db.session import make_engine, transaction
from tests.jobs.test_background import _serve, _stop
from tests.support.pgcluster import (
    PostgresCluster,
    PostgresUnavailableError,
    create_database,
    start_cluster,
    start_standby,
)
from tests.support.signin import PASSWORD, make_user, user_with_token


def _server_processes(pid: int) -> int:
    """How many server processes the supervisor ``pid`` runs (multiprocessing spawns them)."""
    count = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            count += b"spawn_main" in command
    return count


def _fresh() -> httpx.Client:
    # No keep-alive: each request opens a connection, which either server process may accept.
    return httpx.Client(
        limits=httpx.Limits(max_keepalive_connections=0), follow_redirects=False, timeout=30
    )


def _signin(base: str, name: str, password: str) -> httpx.Response:
    with _fresh() as client:
        form = client.get(f"{base}/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text
        return client.post(
            f"{base}/signin",
            data={"username": name, "password": password, "csrf_token": token.group(1)},
            cookies=form.cookies,
        )


def test_two_server_processes_share_sessions_throttling_and_csrf(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    with transaction(engine) as session:
        make_user(session, "alice")
        make_user(session, "mallory-target")
    server, base = _serve(database_url, tmp_path / "serve.log", "--workers", "2", "--no-worker")
    try:
        # Two server processes (and no background worker) under the supervisor.
        assert _server_processes(server.pid) == 2
        signed = _signin(base, "alice", PASSWORD)
        assert signed.status_code == 303, signed.text
        cookies = signed.cookies
        for _ in range(12):
            with _fresh() as client:
                page = client.get(f"{base}/settings/tokens", cookies=cookies)
                assert page.status_code == 200
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        for n in range(4):
            with _fresh() as client:
                made = client.post(
                    f"{base}/api/v1/tokens",
                    json={"name": f"from-any-process-{n}"},
                    headers={"X-CSRF-Token": csrf.group(1)},
                    cookies=cookies,
                )
                assert made.status_code == 201, made.text
                refused = client.post(
                    f"{base}/api/v1/tokens",
                    json={"name": "no-csrf"},
                    cookies=cookies,
                )
                assert refused.status_code == 403
        # Then five wrong passwords, each on a new connection: the sixth try is refused even with
        # the right password, whichever process answers (the failures are in the database).
        for _ in range(5):
            assert _signin(base, "mallory-target", "wrong").status_code != 303
        locked = _signin(base, "mallory-target", PASSWORD)
        assert locked.status_code != 303
    finally:
        _stop(server)


@pytest.fixture
def replicated() -> Iterator[tuple[PostgresCluster, PostgresCluster, str, str]]:
    """A throwaway primary with the schema and two administrators, and its hot standby."""
    try:
        primary = start_cluster(shared_buffers="64MB")
    except PostgresUnavailableError as error:
        pytest.skip(str(error))
    standby: PostgresCluster | None = None
    try:
        url = create_database(primary, "remedium")
        engine = make_engine(url)
        upgrade_database(engine)
        engine.dispose()
        standby = start_standby(primary)
        yield primary, standby, url, standby.url("remedium")
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()


def _admin(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


def _caught_up(primary: PostgresCluster, standby: PostgresCluster) -> None:
    with psycopg.connect(_admin(primary.url()), autocommit=True) as connection:
        target = connection.execute("SELECT pg_current_wal_lsn()").fetchone()
    assert target is not None
    deadline = time.monotonic() + 60
    with psycopg.connect(_admin(standby.url()), autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target[0],)
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.1)
    raise AssertionError("the standby did not catch up")


def _replay(standby: PostgresCluster, action: str) -> None:
    with psycopg.connect(_admin(standby.url()), autocommit=True) as connection:
        connection.execute(f"SELECT pg_wal_replay_{action}()".encode())


def _token_names(client: httpx.Client, base: str) -> set[str]:
    reply = client.get(f"{base}/api/v1/tokens")
    assert reply.status_code == 200, reply.text
    return {token["name"] for token in reply.json()}


def test_reads_go_to_the_standby_and_the_writer_reads_its_writes(
    replicated: tuple[PostgresCluster, PostgresCluster, str, str], tmp_path: Path
) -> None:
    primary, standby, url, read_url = replicated
    engine = make_engine(url)
    try:
        writer_token = user_with_token(engine, "writer")
        reader_token = user_with_token(engine, "reader")
    finally:
        engine.dispose()
    _caught_up(primary, standby)
    server, base = _serve(
        url,
        tmp_path / "serve.log",
        "--workers",
        "2",
        "--no-worker",
        env_extra={"REMEDIUM_DATABASE_READ_URL": read_url},
    )
    writer = httpx.Client(headers={"Authorization": f"Bearer {writer_token}"}, timeout=30)
    reader = httpx.Client(headers={"Authorization": f"Bearer {reader_token}"}, timeout=30)
    try:
        assert "reads (GET) go to the standby" in (tmp_path / "serve.log").read_text()
        # The standby stops replaying: from now on it lags behind the primary.
        _replay(standby, "pause")
        made = writer.post(f"{base}/api/v1/tokens", json={"name": "written-just-now"})
        assert made.status_code == 201, made.text
        assert "remedium_wrote" in made.headers.get("set-cookie", "")
        # The writer's next reads (a page and the API) see the write: they go to the primary.
        assert "written-just-now" in _token_names(writer, base)
        page = writer.get(f"{base}/settings/tokens", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "written-just-now" in page.text
        # Anyone else reads the standby, which has not replayed the write yet.
        assert "written-just-now" not in _token_names(reader, base)
        _replay(standby, "resume")
        _caught_up(primary, standby)
        # Replayed is not yet always visible to a new snapshot on a loaded machine: allow a moment.
        deadline = time.monotonic() + 10
        while "written-just-now" not in _token_names(reader, base):
            assert time.monotonic() < deadline, "the standby never showed the write"
            time.sleep(0.2)
    finally:
        writer.close()
        reader.close()
        _stop(server)
