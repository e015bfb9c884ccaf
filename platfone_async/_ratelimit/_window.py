"""The per-endpoint limiter: a token bucket whose tokens come back one period after the response.

Why stamp at the response: the server counts a request when it *arrives*, somewhere
between our send and the response. A token spent on a request returns ``period + margin``
after that request's response arrived (or it failed), so its next use arrives at the
server more than one ``period`` after the previous one, whatever the latency. With
``calls`` tokens, no rolling window of ``period`` at the server ever holds more than
``calls`` arrivals, while a burst of ``calls`` leaves at once and a saturated endpoint
runs at ``calls`` per ``period + round trip + margin``.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from .._clock import Clock
from ._wait import ErrorSource, Waiter, WaitQueue, logger, make_error

if TYPE_CHECKING:
    from ._state import LimiterState

__all__ = ["DEFAULT_MARGIN", "SlidingWindowLimiter", "default_margin"]

#: The largest margin added to a token's return time, in seconds.
DEFAULT_MARGIN = 0.05


def default_margin(period: float) -> float:
    """50 ms, or 0.5 % of ``period`` when that is less (short test periods lose little)."""
    return min(DEFAULT_MARGIN, period * 0.005)


class SlidingWindowLimiter:
    """At most ``calls`` requests in flight or sent within any rolling ``period``.

    Use ``async with limiter.acquire(): <send the request>``: entering waits (first come,
    first served) for a token; leaving - normally, by an exception or by cancellation -
    stamps the token to return ``period + margin`` later on ``clock.monotonic()``. A
    waiter cancelled while queued takes no token and does not hold up those behind it.
    Entering does not checkpoint when a token is free at once (the request itself will).
    """

    __slots__ = (
        "_blocked_until",
        "_clock",
        "_hold",
        "_in_use",
        "_lock",
        "_permit",
        "_queue",
        "_returns",
        "calls",
        "margin",
        "name",
        "period",
    )

    def __init__(
        self,
        calls: int,
        period: float,
        *,
        clock: Clock,
        margin: float | None = None,
        name: str = "limiter",
    ) -> None:
        if calls < 1:
            raise ValueError(f"calls must be at least 1, not {calls!r}")
        if not period > 0:
            raise ValueError(f"period must be positive, not {period!r}")
        margin = default_margin(period) if margin is None else float(margin)
        if not margin >= 0:
            raise ValueError(f"margin must not be negative, not {margin!r}")
        self.name = name
        self.calls = calls
        self.period = float(period)
        self.margin = margin
        self._clock = clock
        self._hold = self.period + margin
        self._in_use = 0
        # Return times of spent tokens, in order: stamps only grow, the hold is constant.
        self._returns: deque[float] = deque()
        self._queue = WaitQueue()
        self._blocked_until = -math.inf
        self._lock = threading.Lock()
        self._permit = _Permit(self)

    def __repr__(self) -> str:
        return f"<SlidingWindowLimiter {self.name!r} {self.calls}/{self.period:g}s>"

    def acquire(self) -> _Permit:
        """An async context manager holding one token for one request."""
        return self._permit

    def block_until(self, deadline: float) -> None:
        """Close the bucket until ``deadline`` on ``clock.monotonic()`` (a server 429).

        Nothing leaves before then; queued and new callers wait. A later deadline extends
        the block, an earlier one changes nothing.
        """
        with self._lock:
            if deadline > self._blocked_until:
                self._blocked_until = deadline

    def block_for(self, seconds: float) -> None:
        """Close the bucket for ``seconds`` from now."""
        self.block_until(self._clock.monotonic() + seconds)

    def interrupt(self, error: ErrorSource) -> None:
        """Make every caller queued right now raise ``error`` (an account-wide block)."""
        with self._lock:
            self._queue.interrupt(error)

    def state(self) -> LimiterState:
        """A snapshot of the tokens and the queue."""
        with self._lock:
            now = self._clock.monotonic()
            free = self._free(now)
            blocked_for = max(0.0, self._blocked_until - now)
            from ._state import LimiterState

            return LimiterState(
                name=self.name,
                calls=self.calls,
                period=self.period,
                available=0 if blocked_for > 0 else free,
                in_use=self._in_use,
                cooling=len(self._returns),
                waiters=self._queue.live,
                blocked_for=blocked_for,
                next_return_in=self._returns[0] - now if self._returns else None,
            )

    # -- internals (the underscore methods that do not take the lock expect it held) ------

    def _free(self, now: float) -> int:
        returns = self._returns
        while returns and returns[0] <= now:
            returns.popleft()
        return self.calls - self._in_use - len(returns)

    async def _enter(self) -> None:
        with self._lock:
            now = self._clock.monotonic()
            if self._queue.live == 0 and now >= self._blocked_until and self._free(now) > 0:
                self._in_use += 1
                return
            waiter = Waiter()
            self._queue.push(waiter)
        await self._wait(waiter, now)

    def _exit(self) -> None:
        with self._lock:
            self._in_use -= 1
            self._returns.append(self._clock.monotonic() + self._hold)
            # A head with no timer was waiting for a stamp to exist; one that sleeps
            # already wakes no later than this stamp (stamps only grow).
            self._queue.wake_head(only_untimed=True)

    async def _wait(self, waiter: Waiter, start: float) -> None:
        queue = self._queue
        clock = self._clock
        lock = self._lock
        try:
            while True:
                with lock:
                    if waiter.error is not None:
                        raise make_error(waiter.error)
                    if waiter.granted:
                        break
                    delay = None
                    if queue.head() is waiter:
                        now = clock.monotonic()
                        if self._grant(now):
                            continue  # to the head first: that is us
                        until = self._next_change(now)
                        delay = None if until is None else until - now
                await waiter.park(clock, delay)
            # Cancelled while the grant was on its way: leave now, handing the grant on.
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            with lock:
                self._withdraw(waiter)
            raise
        if logger.isEnabledFor(10):
            waited = clock.monotonic() - start
            logger.debug("rate limit %s: waited %.3f s for a token", self.name, waited)

    def _grant(self, now: float) -> bool:
        """Hand free tokens to the head of the queue, then let the new head plan its timer.

        True when a token was handed out.
        """
        queue = self._queue
        granted = False
        if now >= self._blocked_until:
            free = self._free(now)
            while free > 0 and queue.grant_head() is not None:
                self._in_use += 1
                free -= 1
                granted = True
        queue.wake_head(only_untimed=True)
        return granted

    def _next_change(self, now: float) -> float | None:
        """When the head should look again: at the block's end or the next return."""
        if now < self._blocked_until:
            return self._blocked_until
        if self._returns:
            return self._returns[0]
        return None  # every token is in flight: the next exit wakes the head

    def _withdraw(self, waiter: Waiter) -> None:
        if waiter.granted:
            # Granted but never used (cancelled or interrupted first): back at once, unstamped.
            self._in_use -= 1
        else:
            self._queue.abandon(waiter)
        self._grant(self._clock.monotonic())


class _Permit:
    """``async with limiter.acquire():`` - stateless, so one instance serves every call."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        self._limiter = limiter

    async def __aenter__(self) -> None:
        await self._limiter._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter._exit()
