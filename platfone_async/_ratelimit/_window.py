"""One endpoint's limiter: the generic wait loop over a store's window.

``async with limiter.acquire(): <send the request>`` - entering waits (first come, first
served) for a token; leaving - normally, by an exception or by cancellation - gives it
back *spent*: the store stamps it to return ``period + margin`` later (see ``_memory``
for why at the response). A waiter cancelled while queued takes no token. Entering does
not checkpoint when a token is free at once (the request itself will).
"""

from __future__ import annotations

from types import TracebackType

from .._clock import Clock
from .._errors import RateLimitBackendError
from ._memory import DEFAULT_MARGIN, MemoryStore, default_margin
from ._state import LimiterState
from ._store import KeyStore, RateLimit, Take
from ._wait import ErrorSource, Gate, logger

__all__ = ["DEFAULT_MARGIN", "SlidingWindowLimiter", "WindowLimiter", "default_margin"]


class WindowLimiter:
    """Endpoint ``name`` of one key: its window in ``store``, its queue in this process."""

    __slots__ = ("_take_args", "gate", "limit", "name", "store")

    def __init__(self, store: KeyStore, name: str, limit: RateLimit, clock: Clock) -> None:
        self.store = store
        self.name = name
        self.limit = limit
        self.gate = Gate(clock, f"rate limit {name}")
        self._take_args = (self._attempt, self._give_back, self._leave)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.limit.calls}/{self.limit.period:g}s>"

    def acquire(self) -> _Permit:
        """An async context manager holding one token for one request."""
        return _Permit(self)

    def interrupt(self, error: ErrorSource) -> None:
        """Make every caller queued right now raise ``error`` (an account-wide block)."""
        self.gate.interrupt(error)

    async def enter(self) -> str:
        return await self.gate.take(*self._take_args)

    async def exit(self, token: str) -> None:
        # Not shielded here: a store whose return may suspend shields it itself.
        try:
            await self.store.window_return(self.name, self.limit, token, spent=True)
        except RateLimitBackendError as exc:
            # The store keeps what it owes; the request is done: say so, and go on.
            logger.warning("rate limit %s: could not return a token: %s", self.name, exc)
        # A head sleeping on a timer wakes no later than this token's return.
        self.gate.wake_head(only_untimed=True)

    async def _attempt(self, want: int) -> Take:
        return await self.store.window_take(self.name, self.limit, want)

    async def _give_back(self, token: str) -> None:
        await self.store.window_return(self.name, self.limit, token, spent=False)
        self.gate.wake_head()

    async def _leave(self) -> None:
        await self.store.window_leave(self.name)


class _Permit:
    __slots__ = ("_limiter", "_token")

    def __init__(self, limiter: WindowLimiter) -> None:
        self._limiter = limiter
        self._token: str | None = None

    async def __aenter__(self) -> None:
        self._token = await self._limiter.enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            await self._limiter.exit(token)


class SlidingWindowLimiter(WindowLimiter):
    """At most ``calls`` requests in flight or sent within any rolling ``period``, in
    this process (a window of a private memory store)."""

    __slots__ = ("_book",)

    def __init__(
        self,
        calls: int,
        period: float,
        *,
        clock: Clock,
        margin: float | None = None,
        name: str = "limiter",
    ) -> None:
        store = MemoryStore(clock, margin)
        limit = RateLimit(calls, period)
        super().__init__(store, name, limit, clock)
        self._book = store.window(name, limit)

    @property
    def calls(self) -> int:
        return self._book.calls

    @property
    def period(self) -> float:
        return self._book.period

    @property
    def margin(self) -> float:
        return self._book.margin

    def block_until(self, deadline: float) -> None:
        """Close the bucket until ``deadline`` on ``clock.monotonic()`` (a server 429)."""
        self._book.block_until(deadline)

    def block_for(self, seconds: float) -> None:
        """Close the bucket for ``seconds`` from now."""
        self._book.block_until(self._book.clock.monotonic() + seconds)

    def state(self) -> LimiterState:
        """A snapshot of the tokens and the queue."""
        return self._book.state(self.gate.waiters)
