"""A cancelled slot: its process stops at once, a fresh one starts only when a task needs the
slot, and a pool whose last tile was cancelled closes without waiting for a start-up."""

from __future__ import annotations

import threading
import time

import pytest

from arnisd.cluster.slots import SlotPool
from test_slot_startup import PROBE, _task

pytestmark = pytest.mark.timeout(120)

SLOW = "tests.fake_generators:slow_generate"


def test_a_cancelled_slot_restarts_only_when_a_task_needs_it(monkeypatch):
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", "30")
    arrived = threading.Event()
    pool = SlotPool(1, SLOW, notify=arrived.set)
    try:
        first = pool.slots[0].process
        pool.submit(pool.slots[0], ("t", 1), _task())
        assert pool.cancel(("t", 1))
        assert not first.is_alive() and pool.slots[0].process is None
        started = time.monotonic()
        pool.close()                           # nothing starting: closes at once
        assert time.monotonic() - started < 0.4
    finally:
        pool.close()


def test_the_next_task_after_a_cancel_gets_a_fresh_process():
    arrived = threading.Event()
    pool = SlotPool(1, PROBE, notify=arrived.set)
    try:
        first = pool.slots[0].process
        pool.submit(pool.slots[0], ("t", 1), _task())
        pool.cancel(("t", 1))
        slot = pool.free_slot()
        assert slot is pool.slots[0] and slot.process is not None and slot.process is not first
        pool.submit(slot, ("t", 2), _task())
        deadline = time.monotonic() + 60
        results = []
        while not results and time.monotonic() < deadline:
            arrived.wait(1)
            arrived.clear()
            results = pool.results()
        [(lease, result)] = results
        assert lease == ("t", 2) and "error" not in result, result
    finally:
        pool.close()
