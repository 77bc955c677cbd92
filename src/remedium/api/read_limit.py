"""At most a few reads at once inside one server process; the others wait their turn, in order.

A read (page or API ``GET``) runs its database work and rendering in a worker thread. With
dozens of clients at once, dozens of threads compete for the one interpreter lock and for the
connection pool, and every request slows down together: measured with 50 users on 2 cores
(``benchmarks/load.py``, docs/deployment.md), capping the reads in progress per process gave
more requests per second and a 95th percentile much closer to the median than letting them
all in. A read that waits here costs nothing but a place in the event loop's queue; waiters are
let in first come, first served.

A read holds its place until its answer starts (``http.response.start``): sending the body to a
slow client, or streaming an export, does not hold back the reads behind it. Writes (``POST``,
``PUT``, ``PATCH``, ``DELETE``) are not counted: an import can run for minutes and must not hold
back the pages. The cap is ``REMEDIUM_MAX_CONCURRENT_READS`` (0: no cap).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

READ_METHODS = frozenset({"GET", "HEAD"})


class ReadLimitMiddleware:
    """Lets at most ``limit`` ``GET``/``HEAD`` requests run at once (0: no limit)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        # Created on first use, inside the server's event loop.
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limit <= 0 or scope["type"] != "http" or scope["method"] not in READ_METHODS:
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        await slots.acquire()
        held = True

        async def send_and_release(message: Message) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                slots.release()
            await send(message)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            if held:
                slots.release()
