"""Pages that run to 10,000 items (``/api/machines`` unpaged: 5.5 MB) are built without the
cyclic garbage collector's passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection while a large page is read and built.

    A page of 10,000 machines allocates some 100,000 rows, dicts and lists, none in a cycle
    (reference counting frees them); the collector's passes that so many allocations trigger
    cost about a third of building it, and a pass over the whole heap while the page is alive
    added 0.1 s to one request in ten. The routes keep it off until the page is encoded and
    freed. It is enabled again after (only by the request that found it enabled, so
    overlapping requests leave it as they found it).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
