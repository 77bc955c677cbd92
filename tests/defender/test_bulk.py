"""The collector switch of large Defender pages (``defender/bulk.py``) under overlapping
requests: off while any of them is inside, back on after the last one, never left off."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from remedium.defender.bulk import without_cycle_collection


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_off_inside_on_after() -> None:
    with without_cycle_collection():
        assert not gc.isenabled()
        with without_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer one is still inside
    assert gc.isenabled()


def test_left_off_when_it_was_off() -> None:
    gc.disable()
    with without_cycle_collection():
        pass
    assert not gc.isenabled()


def test_first_out_does_not_turn_it_on_under_the_other() -> None:
    """A enters, B enters, A leaves while B is still building: B keeps the collector off."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with without_cycle_collection():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second() -> None:
        a_in.wait(5)
        with without_cycle_collection():
            b_in.set()
            a_out.wait(5)
            seen.append(gc.isenabled())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [False]
    assert gc.isenabled()


def test_overlapping_threads_never_leave_it_off() -> None:
    start = threading.Barrier(8)

    def request() -> None:
        start.wait()
        for _ in range(2000):
            with without_cycle_collection():
                assert not gc.isenabled()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
