"""Figures every user asks for again and again, cached per process, invalidated by generation.

A :class:`~remedium.common.models.CacheGeneration` counter per cached family lives in the database;
whatever changes the figures (the recompute, the daily score snapshot) bumps it in its own
transaction. A cache entry is keyed by the database, the counter's value and the caller's key
(the scope), so an entry can never outlive the data it was computed from, in any process, and
nothing expires by time. Reading the counter is one primary-key look-up per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from remedium.common.models import CacheGeneration
from remedium.db.session import is_postgres

DASHBOARD = "dashboard"
MAX_ENTRIES = 512

T = TypeVar("T")


def generation(session: Session, name: str) -> int:
    """The current value of counter ``name`` (0 before the first bump)."""
    value = session.scalar(select(CacheGeneration.value).where(CacheGeneration.name == name))
    return int(value or 0)


def bump(session: Session, name: str) -> None:
    """Invalidate every process's entries of ``name`` when the caller's transaction commits."""
    result = session.execute(
        update(CacheGeneration)
        .where(CacheGeneration.name == name)
        .values(value=CacheGeneration.value + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 1) == 0:
        session.execute(
            _insert(session)(CacheGeneration)
            .values(name=name, value=1)
            .on_conflict_do_update(
                index_elements=["name"], set_={"value": CacheGeneration.value + 1}
            )
        )


def _insert(session: Session) -> Any:
    """The dialect's INSERT that can say ON CONFLICT DO UPDATE."""
    if not is_postgres(session):
        return sqlite_insert
    # Loaded here: importing PostgreSQL's dialect costs a command on SQLite 30 ms (start-up).
    from sqlalchemy.dialects.postgresql import insert  # noqa: PLC0415 — not on SQLite

    return insert


class GenerationCache:
    """A bounded, thread-safe map of (database, generation, key) to a computed value."""

    def __init__(self, name: str, max_entries: int = MAX_ENTRIES) -> None:
        self.name = name
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, session: Session, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key``, computed (with ``session``) when missing or stale."""
        bind = session.get_bind()
        database = str(bind.engine.url)
        full_key = (database, generation(session, self.name), key)
        with self._lock:
            if full_key in self._entries:
                self._entries.move_to_end(full_key)
                self.hits += 1
                value: T = self._entries[full_key]
                return value
        value = compute()
        with self._lock:
            self.misses += 1
            self._entries[full_key] = value
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every entry (tests)."""
        with self._lock:
            self._entries.clear()
