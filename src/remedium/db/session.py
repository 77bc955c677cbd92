"""Engines and sessions. The caller (request, CLI command, job) owns the transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from remedium.settings import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


# Set in a pooled connection's ``info`` by whoever turns SQLite's foreign-key checks off on it.
FOREIGN_KEYS_OFF = "remedium.foreign_keys_off"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine tuned for the database kind behind ``url``."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the web server read while an import or a job writes.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # A small page cache, sorts and temporary tables in files: the memory of an import or
            # a recompute then stays flat however large the report or the organisation (the
            # operating system caches those files; reads go through the memory map). Measured
            # against a 200 MB cache with in-memory temporary storage: a 1,000,000-finding
            # import 377 -> 141 MB, a 30,000-device full recompute 482 -> 267 MB, neither slower
            # (docs/imports.md).
            cursor.execute("PRAGMA temp_store=FILE")
            cursor.execute("PRAGMA cache_size=-16000")
            cursor.execute("PRAGMA mmap_size=1073741824")
            cursor.close()

        @event.listens_for(engine, "checkout")
        def _check_foreign_keys(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            # A bulk load stops checking them for its own transaction and marks the connection
            # (db/indexes.py); whoever takes that connection next has them checked again. Only
            # then: a statement on every checkout cost about 2 % of a page view under load.
            if record.info.pop(FOREIGN_KEYS_OFF, False):
                dbapi_connection.execute("PRAGMA foreign_keys=ON")

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database)."""
    settings = get_settings()
    return make_engine(url or settings.database_url, echo=settings.log_sql)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; objects stay usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def dry_run_session(engine: Engine) -> Iterator[Session]:
    """A unit of work that is always rolled back: what it would change, changing nothing."""
    session = session_factory(engine)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def is_postgres(session_or_engine: Session | Engine) -> bool:
    """True when the database behind this session or engine is PostgreSQL."""
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def take_writer_lock(session: Session, name: str, *, wait_seconds: float = 600.0) -> None:
    """Wait until no other transaction holds lock ``name``, then hold it until this one ends.

    PostgreSQL: a transaction-scoped advisory lock on the hash of ``name``. SQLite has one
    writer at a time anyway: a write that changes nothing takes the database's write lock now,
    before this transaction reads anything, waiting up to ``wait_seconds`` (so a second import
    waits for the first instead of failing on a stale snapshot). Call it first in a transaction.
    """
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
        return
    connection = session.connection()
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_seconds * 1000)}")
    try:
        connection.execute(
            text("UPDATE job_lease SET holder = holder WHERE job = :name"), {"name": name}
        )
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
