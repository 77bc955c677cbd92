"""A throwaway PostgreSQL cluster for tests and benchmarks.

PostgreSQL refuses to run as root, so when we are root the cluster is created and started as
the ``postgres`` system user, in a folder it owns. The server listens on loopback only.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _find_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise PostgresUnavailableError(f"{name} not found: install the 'postgresql' package")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresCluster:
    """A running cluster; :meth:`url` gives a SQLAlchemy URL for one of its databases."""

    folder: Path
    port: int
    as_user: str | None

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this cluster."""
        user = self.as_user or os.environ.get("USER", "postgres")
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run(
                _find_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"
            )
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _new_folder() -> tuple[Path, str | None]:
    folder = Path(tempfile.mkdtemp(prefix="remedium-pg-"))
    as_user = "postgres" if os.geteuid() == 0 else None
    if as_user:
        shutil.chown(folder, user=as_user)
    return folder, as_user


def _options(cluster: PostgresCluster, shared_buffers: str) -> str:
    return (
        f"-p {cluster.port} -k {cluster.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
        f"-c shared_buffers={shared_buffers} -c work_mem=64MB -c maintenance_work_mem=256MB"
    )


def start_cluster(shared_buffers: str = "256MB") -> PostgresCluster:
    """Create and start a new cluster on a free loopback port."""
    initdb = _find_bin("initdb")
    folder, as_user = _new_folder()
    cluster = PostgresCluster(folder=folder, port=_free_port(), as_user=as_user)
    data = folder / "data"
    cluster._run(initdb, "-D", str(data), "-A", "trust", "-E", "UTF8", "--no-locale")
    return _start(cluster, _options(cluster, shared_buffers))


def start_standby(primary: PostgresCluster, shared_buffers: str = "128MB") -> PostgresCluster:
    """A hot standby of ``primary``: ``pg_basebackup -R`` (as the cluster's user) copies it and
    writes the streaming-replication settings; the standby then follows the primary's WAL."""
    folder, as_user = _new_folder()
    standby = PostgresCluster(folder=folder, port=_free_port(), as_user=as_user)
    user = primary.as_user or os.environ.get("USER", "postgres")
    standby._run(
        _find_bin("pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        user,
        "-D",
        str(folder / "data"),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
    )
    return _start(standby, _options(standby, shared_buffers) + " -c hot_standby=on")


def _start(cluster: PostgresCluster, options: str) -> PostgresCluster:
    folder, data = cluster.folder, cluster.folder / "data"
    pg_ctl = _find_bin("pg_ctl")
    cluster._run(pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", cluster.port), timeout=1):
                return cluster
        except OSError:
            time.sleep(0.1)
    raise PostgresUnavailableError("the test cluster did not start; see its log in " + str(folder))


def create_database(cluster: PostgresCluster, name: str, template: str | None = None) -> str:
    """Create database ``name`` (optionally from ``template``) and return its URL."""
    import psycopg  # noqa: PLC0415 — only a PostgreSQL run needs it (conftest imports this always)

    admin_url = cluster.url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        connection.execute(sql.encode())
    return cluster.url(name)
