"""Pages that run to 10,000 items (``/api/machines`` unpaged: 5.5 MB) are built without the
cyclic garbage collector's passes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _CollectorSwitch:
    """Counts the requests that want the collector off, under a lock (it is process-wide)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._was_enabled = False

    def enter(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._inside += 1

    def leave(self) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._was_enabled:
                gc.enable()


_SWITCH = _CollectorSwitch()


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection while a large page is read and built.

    A page of 10,000 machines allocates some 100,000 rows, dicts and lists, none in a cycle
    (reference counting frees them); the collector's passes that so many allocations trigger
    cost about a third of building it, and a pass over the whole heap while the page is alive
    added 0.1 s to one request in ten. The routes keep it off until the page is encoded and
    freed. The switch is process-wide and requests overlap (threads): the first one in turns
    the collector off, the last one out turns it back on if it was on, so no interleaving can
    leave it off or turn it on under another (tests/defender/test_bulk.py).
    """
    _SWITCH.enter()
    try:
        yield
    finally:
        _SWITCH.leave()
