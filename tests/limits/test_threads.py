"""Limits shared by clients on different event loops (each sync client runs its own thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import anyio
import pytest

from platfone_async._clock import SystemClock
from platfone_async._ratelimit._slots import ActivationSlots
from platfone_async._ratelimit._window import SlidingWindowLimiter

#: Real seconds before a test gives up on a wake-up that never came.
PATIENCE = 10.0


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _in_thread(backend: str, fn: Callable[[], object]) -> threading.Thread:
    async def main() -> None:
        await fn()  # type: ignore[misc]

    thread = threading.Thread(
        target=anyio.run, args=(main,), kwargs={"backend": backend}, daemon=True
    )
    thread.start()
    return thread


@pytest.mark.parametrize(("holder", "waiter"), [("asyncio", "trio"), ("trio", "asyncio")])
def test_a_token_returned_on_one_loop_wakes_a_waiter_on_another(holder: str, waiter: str) -> None:
    """A waiter parked on one event loop is woken when a request on another loop ends."""
    limiter = SlidingWindowLimiter(1, 0.001, clock=SystemClock(), margin=0.0)
    release = threading.Event()
    got_token = threading.Event()

    async def hold() -> None:
        async with limiter.acquire():
            await anyio.to_thread.run_sync(release.wait)

    async def wait() -> None:
        async with limiter.acquire():
            got_token.set()

    threads = [_in_thread(holder, hold)]
    _until(lambda: 1 == limiter.state().in_use)
    threads.append(_in_thread(waiter, wait))
    _until(lambda: 1 == limiter.state().waiters)
    release.set()
    assert True is got_token.wait(PATIENCE)
    for thread in threads:
        thread.join(PATIENCE)


@pytest.mark.parametrize("waiter", ["asyncio", "trio"])
def test_a_slot_released_in_another_thread_is_handed_to_the_waiter(waiter: str) -> None:
    """A slot released outside the waiter's thread goes straight to the queued order."""
    slots = ActivationSlots(1, clock=SystemClock())
    token = anyio.run(slots.acquire)
    got_slot = threading.Event()

    async def wait() -> None:
        await slots.acquire()
        got_slot.set()

    thread = _in_thread(waiter, wait)
    _until(lambda: 1 == slots.state().waiters)
    token.release()
    assert True is got_slot.wait(PATIENCE)
    thread.join(PATIENCE)
