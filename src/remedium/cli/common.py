"""What every command shares: the database it is pointed at, and JSON output."""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy import Engine

console = Console(stderr=True)
_closed_at_exit: weakref.WeakSet[Engine] = weakref.WeakSet()


def ready_engine() -> Engine:
    """The configured database, with its schema created or upgraded when needed.

    The engine is disposed of at exit (its connections closed: SQLite folds its write-ahead log
    back into the file), before the interpreter's own teardown (see :func:`loading`).
    """
    # SQLAlchemy and the settings load when a command runs, not for its --help (docs/imports.md).
    from remedium.db.migrate import upgrade_database  # noqa: PLC0415 — only when a command runs
    from remedium.db.session import get_engine  # noqa: PLC0415 — only when a command runs

    engine = get_engine()
    upgrade_database(engine)
    if engine not in _closed_at_exit:
        _closed_at_exit.add(engine)
        atexit.register(_close_at_exit, weakref.ref(engine))  # keeps no engine alive
    return engine


def _close_at_exit(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.dispose()
    # What is left is torn down with the process: the collector need not scan it first (the
    # interpreter's final collection of every loaded module's objects took 0.1 s of CPU).
    gc.freeze()


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Load a command's modules (and open its database) with the cyclic garbage collector paused.

    Loading SQLAlchemy, the models and the services makes some hundred thousand objects that live
    as long as the process: collecting while they are made, and scanning them again in every
    later full collection, took a small import about 0.05 s of CPU. Once loaded they are frozen
    (``gc.freeze``: kept out of collections; freed as usual when no longer referenced), once per
    process. Measured in docs/imports.md, "Start-up".
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
        if paused:
            gc.enable()


def print_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on standard output (for ``--json``)."""
    print(json.dumps(payload, default=str, sort_keys=True))
