"""``remedium db backup FILE`` / ``remedium db restore FILE``: whole-database copies.

SQLite: the online backup API of SQLite (a consistent copy taken while the server, workers and
imports keep running: an import's transaction is either wholly in the copy or not at all).
PostgreSQL: ``pg_dump --format=custom`` (one consistent snapshot, also online) and
``pg_restore --clean --single-transaction``. The file's first bytes say which kind it is; a
backup restores only into a database of its own kind. Restoring replaces everything in the
target database: stop the servers and workers on it first (docs/deployment.md).
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What was written or read."""

    kind: str  # sqlite | postgresql
    path: Path
    size: int


def _kind(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools")
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries it."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")


def backup(url: str, target: Path) -> BackupInfo:
    """Write a consistent copy of the database at ``url`` to ``target`` (replaced at the end)."""
    target = target.resolve()
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    if _kind(url) == "sqlite":
        source = sqlite3.connect(_sqlite_path(url), timeout=60)
        copy = sqlite3.connect(partial)
        try:
            # All pages in one step: one read transaction, so one consistent snapshot even
            # while other processes write (WAL lets them go on meanwhile).
            source.backup(copy, pages=-1)
        finally:
            copy.close()
            source.close()
    else:
        dsn, env = _libpq(url)
        _run(
            [
                _pg_bin("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={partial}",
                f"--dbname={dsn}",
            ],
            env,
        )
    partial.replace(target)
    return BackupInfo(_kind(url), target, target.stat().st_size)


def file_kind(path: Path) -> str:
    """``sqlite`` or ``postgresql``, from the file's first bytes."""
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a remedium backup (neither SQLite nor pg_dump custom format)")


def restore(url: str, source: Path) -> BackupInfo:
    """Replace the database at ``url`` with the backup in ``source``."""
    kind = file_kind(source)
    if kind != _kind(url):
        raise BackupError(
            f"{source} is a {kind} backup; the configured database is {_kind(url)}: "
            "restore it into a database of the same kind"
        )
    if kind == "sqlite":
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            checked = backup_db.execute("PRAGMA integrity_check").fetchone()
            if not checked or checked[0] != "ok":
                raise BackupError(f"{source} is damaged: {checked}")
            target = sqlite3.connect(_sqlite_path(url), timeout=60)
            try:
                backup_db.backup(target, pages=-1)
            finally:
                target.close()
        finally:
            backup_db.close()
    else:
        dsn, env = _libpq(url)
        _run(
            [
                _pg_bin("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={dsn}",
                str(source),
            ],
            env,
        )
    return BackupInfo(kind, source, source.stat().st_size)
