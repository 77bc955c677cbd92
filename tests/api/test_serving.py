"""At most ``REMEDIUM_MAX_CONCURRENT_READS`` reads run at once in a process; writes are not held;
a serving process tunes its garbage collector.

The middleware wraps a tiny ASGI app that counts the requests inside it at the same moment; a
burst of concurrent requests then shows how many the middleware let in together.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from remedium.api.read_limit import ReadLimitMiddleware


class _Counting:
    """An app that holds each request a moment and records the most inside it at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.order: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)
        self.order.append(scope["path"])
        await asyncio.sleep(0.02)
        self.inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _burst(limit: int, method: str, count: int = 12) -> _Counting:
    inner = _Counting()
    app = ReadLimitMiddleware(inner, limit=limit)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            replies = await asyncio.gather(
                *(client.request(method, f"/r{n}") for n in range(count))
            )
        assert all(reply.status_code == 200 for reply in replies)

    # In a thread of its own: a browser test in the same worker may hold a running event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
    return inner


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_reads_wait_their_turn_in_order(method: str) -> None:
    inner = _burst(3, method)
    assert inner.most == 3
    # First come, first served: the requests reached the app in the order they were made.
    assert inner.order == [f"/r{n}" for n in range(12)]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_not_held(method: str) -> None:
    assert _burst(1, method).most == 12


def test_a_read_sending_its_body_holds_no_place() -> None:
    """Once its answer has started, a read (a slow client, a streamed export) lets the next in."""
    entered: list[str] = []
    gave_up: list[str] = []
    everyone_in = asyncio.Event()

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        entered.append(scope["path"])
        if len(entered) == 3:
            everyone_in.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:  # the body waits until the other reads got in (or gives up)
            await asyncio.wait_for(everyone_in.wait(), 2)
        except TimeoutError:
            gave_up.append(scope["path"])
        await send({"type": "http.response.body", "body": b"ok"})

    app = ReadLimitMiddleware(streaming, limit=1)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await asyncio.gather(*(client.get(f"/r{n}") for n in range(3)))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
    assert entered == ["/r0", "/r1", "/r2"]
    assert gave_up == []  # nobody had to finish its body before the next read got in


def test_zero_means_no_limit() -> None:
    assert _burst(0, "GET").most == 12


def test_a_serving_process_freezes_the_application_and_collects_less_often() -> None:
    """``remedium serve`` builds ``serving_app``; tests build ``create_app`` and keep Python's
    collector as it is. Checked in a fresh interpreter (freezing is process-wide)."""
    code = (
        "import gc, json, sys\n"
        "from sqlalchemy import create_engine\n"
        "from remedium.api.app import COLLECTOR_THRESHOLDS, create_app, serving_app\n"
        "engine = create_engine('sqlite://')\n"
        "create_app(engine)\n"
        "before = (gc.get_threshold(), gc.get_freeze_count())\n"
        "serving_app(engine)\n"
        "after = (gc.get_threshold(), gc.get_freeze_count())\n"
        "print(json.dumps([before, after, list(COLLECTOR_THRESHOLDS)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, wanted = json.loads(done.stdout)
    assert before == [[700, 10, 10], 0]
    assert after[0] == wanted
    assert after[1] > 10_000  # the application's objects are out of the collector's sight
