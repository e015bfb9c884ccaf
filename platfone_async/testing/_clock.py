"""A virtual clock for tests: time moves only when every task is waiting on it."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel

__all__ = ["VirtualClock"]


class _Sleeper:
    __slots__ = ("alive", "deadline", "event")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.event = anyio.Event()
        self.alive = True


class VirtualClock:
    """A :class:`platfone_async.Clock` whose time only moves when told to.

    ``advance(seconds)`` moves it by hand. Inside ``async with clock.autojump():``
    it also jumps by itself to the next sleeper's deadline whenever every other task
    is blocked - the behaviour of trio's ``MockClock(autojump_threshold=0)``, on
    asyncio and trio alike - so a test of a 20-minute expiry takes milliseconds.

    Its ``time()`` and ``monotonic()`` are the same number: Unix seconds, starting at
    ``start``.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, _Sleeper]] = []
        self._seq = itertools.count()
        self._new_sleeper: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        sleeper = _Sleeper(self._now + seconds)
        heapq.heappush(self._sleepers, (sleeper.deadline, next(self._seq), sleeper))
        if self._new_sleeper is not None:
            self._new_sleeper.set()
        try:
            await sleeper.event.wait()
        finally:
            sleeper.alive = False

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        self._wake_due()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, sleeper = heapq.heappop(self._sleepers)
            sleeper.event.set()

    def _next_deadline(self) -> float | None:
        while self._sleepers and not self._sleepers[0][2].alive:
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    @asynccontextmanager
    async def autojump(self) -> AsyncIterator[VirtualClock]:
        """Jump to the next deadline whenever all other tasks are blocked."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._jump_forever)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _jump_forever(self) -> None:
        while True:
            await _wait_all_tasks_blocked()
            deadline = self._next_deadline()
            if deadline is None:
                self._new_sleeper = anyio.Event()
                await self._new_sleeper.wait()
                self._new_sleeper = None
                continue
            if deadline > self._now:
                self._now = deadline
            self._wake_due()


async def _wait_all_tasks_blocked() -> None:
    # anyio's own version polls with a real 0.1 s sleep on asyncio, which would make
    # virtual time crawl; checking again after each pass of the event loop is exact
    # enough and costs no real time.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        import trio.testing

        await trio.testing.wait_all_tasks_blocked()
        return
    this = asyncio.current_task()
    while True:
        await asyncio.sleep(0)
        for task in asyncio.all_tasks():
            if task is this:
                continue
            waiter = task._fut_waiter  # type: ignore[attr-defined]
            if waiter is None or waiter.done():
                break
        else:
            return
