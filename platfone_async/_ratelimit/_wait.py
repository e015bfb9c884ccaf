"""The waiting room shared by the rate limiters and the activation slots.

Waiters queue first come, first served. Only the waiter at the head of a queue sleeps on
the clock (until the exact moment something it waits for comes back); every other waiter
parks on an :class:`anyio.Event` and costs no timer. Whoever changes the state hands a
token straight to the head (``granted``) and wakes it, so a token can never be taken by
a newcomer while someone is queued, and a cancelled waiter simply leaves the queue.

An injected :class:`~platfone_async._clock.Clock` cannot be raced against an event with
a task group per waiter (too costly at ten thousand waiters) nor with anyio's own
deadlines (they run on the event loop's clock, not on a virtual one). Instead a timed
waiter sleeps on the clock inside its own :class:`anyio.CancelScope`, and waking it
cancels that scope: one sleeper, no extra task.

Clients on different event loops (each sync ``Platfone`` runs its own loop thread) share
one key's limits, so the state is guarded by a :class:`threading.Lock` held only between
awaits, and a waiter woken from another thread is woken through its own loop's
thread-safe "call soon".
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeAlias

import anyio

from .._clock import Clock
from .._errors import RateLimitBackendError
from ._store import Take

__all__ = [
    "ErrorSource",
    "Gate",
    "WaitQueue",
    "Waiter",
    "for_held_number",
    "logger",
    "make_error",
    "serving_held_number",
]

#: What a blocked key raises: an exception instance (raised as is) or a factory called
#: once per raise (so concurrent tasks do not share, and scramble, one traceback).
ErrorSource: TypeAlias = "BaseException | Callable[[], BaseException]"

logger = logging.getLogger("platfone_async")

#: True while a request serves a number the SDK already holds (a watch's poll, a
#: finalize, a cancel): if the shared store fails then, the request goes on under
#: in-process limits instead of failing, so that no code is lost to a store blip.
_HELD_NUMBER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "platfone_async_held_number", default=False
)


class _HeldNumber:
    """``with for_held_number():`` - a plain class, a third of a generator-based context
    manager's cost: every poll of a watch enters one."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _HELD_NUMBER.set(True)

    def __exit__(self, *exc_info: object) -> None:
        _HELD_NUMBER.reset(self._token)


def for_held_number() -> _HeldNumber:
    """Mark the requests made inside as serving a number already open (see above)."""
    return _HeldNumber()


def serving_held_number() -> bool:
    """Whether the current request serves a number already open."""
    return _HELD_NUMBER.get()


def make_error(source: ErrorSource) -> BaseException:
    """The exception to raise for ``source``."""
    if isinstance(source, BaseException):
        return source
    return source()


def _call_soon_threadsafe() -> Callable[[Callable[[], None]], object]:
    """How another thread schedules a call in the event loop running here."""
    # asyncio is imported here, not at the top: `import platfone_async` stays light, and
    # a loop running here means asyncio is loaded already.
    import asyncio

    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon


class Waiter:
    """One task waiting in a :class:`WaitQueue` (created in that task)."""

    __slots__ = (
        "_call_soon",
        "_event",
        "_scope",
        "_thread",
        "abandoned",
        "error",
        "granted",
        "nudged",
        "timed",
        "token",
    )

    def __init__(self) -> None:
        self.granted = False
        #: The token handed to this waiter with ``granted``.
        self.token = ""
        #: Woken while not parked: the next park returns at once (no wake-up is lost).
        self.nudged = False
        self.abandoned = False
        self.timed = False
        self.error: ErrorSource | None = None
        self._event: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._thread = threading.get_ident()
        self._call_soon = _call_soon_threadsafe()

    async def park(self, clock: Clock, delay: float | None) -> None:
        """Suspend until :meth:`wake`, or until ``delay`` clock seconds pass (None: no timer).

        Returning says nothing about why: the caller looks at the state again.
        """
        if self.nudged:
            self.nudged = False
            await anyio.lowlevel.checkpoint()
            return
        if delay is None:
            event = self._event = anyio.Event()
            try:
                await event.wait()
            finally:
                self._event = None
            return
        self.timed = True
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                await clock.sleep(delay)
        finally:
            self._scope = None
            self.timed = False

    def wake(self) -> None:
        """Make a parked waiter look at the state again (a no-op while it runs)."""
        if threading.get_ident() == self._thread:
            self._wake_here()
            return
        # RuntimeError: its event loop has ended, and the waiting task with it.
        with contextlib.suppress(RuntimeError):
            self._call_soon(self._wake_here)

    def _wake_here(self) -> None:
        if self._event is not None:
            self._event.set()
        elif self._scope is not None:
            self._scope.cancel()
        else:
            self.nudged = True


class WaitQueue:
    """A FIFO of :class:`Waiter`; leaving it is O(1) (abandoned waiters are skipped)."""

    __slots__ = ("_queue", "live")

    def __init__(self) -> None:
        self._queue: deque[Waiter] = deque()
        #: Waiters still queued (neither granted nor abandoned).
        self.live = 0

    def push(self, waiter: Waiter) -> None:
        self._queue.append(waiter)
        self.live += 1

    def head(self) -> Waiter | None:
        """The first waiter still queued, if any."""
        queue = self._queue
        while queue and queue[0].abandoned:
            queue.popleft()
        return queue[0] if queue else None

    def grant_head(self) -> Waiter | None:
        """Take the head out of the queue as granted and wake it; None when empty."""
        waiter = self.head()
        if waiter is None:
            return None
        self._queue.popleft()
        self.live -= 1
        waiter.granted = True
        waiter.wake()
        return waiter

    def abandon(self, waiter: Waiter) -> None:
        """Take a waiter that was not granted out of the queue."""
        if not waiter.abandoned and not waiter.granted:
            waiter.abandoned = True
            self.live -= 1

    def wake_head(self, *, only_untimed: bool = False) -> None:
        """Wake the head so that it plans its next timer (``only_untimed``: if it has none)."""
        waiter = self.head()
        if waiter is not None and not (only_untimed and waiter.timed):
            waiter.wake()

    def interrupt(self, error: ErrorSource) -> None:
        """Make every queued waiter raise ``error``."""
        for waiter in self:
            waiter.error = error
            waiter.wake()

    def __iter__(self) -> Iterator[Waiter]:
        return (w for w in list(self._queue) if not w.abandoned)


#: Asks the store for up to ``want`` tokens (see ``_store.Take``).
Attempt: TypeAlias = "Callable[[int], Awaitable[Take]]"
#: Gives a token back unspent (its waiter left before using it).
GiveBack: TypeAlias = "Callable[[str], Awaitable[None]]"
#: Tells the store this process has no one waiting any more.
Leave: TypeAlias = "Callable[[], Awaitable[None]]"


class Gate:
    """The one wait loop: this process's callers of one resource, first come, first
    served, over a store's non-waiting ``take``.

    Only the head of the queue asks the store, for as many tokens as are queued; those
    granted go to the first waiters in order, so a newcomer never takes a token while
    someone is queued. The head then sleeps as long as the store said (or until a change
    made here wakes it: :meth:`wake_head`). A waiter cancelled or timed out takes nothing;
    one cancelled just as its token arrived gives the token back unspent.
    """

    __slots__ = ("_clock", "_lock", "_queue", "level", "name", "unit")

    def __init__(
        self, clock: Clock, name: str, unit: str = "a token", *, level: int = logging.DEBUG
    ) -> None:
        self.name = name
        self.unit = unit
        #: The level of the line that says how long a caller waited.
        self.level = level
        self._clock = clock
        self._queue = WaitQueue()
        self._lock = threading.Lock()

    @property
    def waiters(self) -> int:
        """Callers queued here now."""
        return self._queue.live

    async def take(
        self,
        attempt: Attempt,
        give_back: GiveBack,
        leave: Leave,
        *,
        deadline: float | None = None,
    ) -> str:
        """A token, once the store grants one; TimeoutError at ``deadline`` (clock
        monotonic seconds)."""
        with self._lock:
            idle = self._queue.live == 0
        if idle:
            first = await attempt(1)
            if first.granted:
                return first.granted[0]
        clock = self._clock
        lock = self._lock
        queue = self._queue
        start = clock.monotonic()
        waiter = Waiter()
        with lock:
            queue.push(waiter)
        try:
            while True:
                with lock:
                    if waiter.error is not None:
                        raise make_error(waiter.error)
                    if waiter.granted:
                        break
                    head = queue.head() is waiter
                    want = queue.live
                delay: float | None = None
                if head:
                    with anyio.CancelScope(shield=True):
                        result = await attempt(want)
                    if result.granted:
                        await self._hand_out(result.granted, give_back)
                        continue  # the head is served first: that is us
                    delay = result.retry_in
                if deadline is not None:
                    now = clock.monotonic()
                    if now >= deadline:
                        raise TimeoutError(f"{self.name}: no {self.unit.split()[-1]} free in time")
                    delay = deadline - now if delay is None else min(delay, deadline - now)
                await waiter.park(clock, delay)
            # Cancelled while the grant was on its way: leave now, handing the token back.
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            with lock:
                token = waiter.token if waiter.granted else None
                queue.abandon(waiter)
                queue.wake_head()
                last = queue.live == 0
            with anyio.CancelScope(shield=True), contextlib.suppress(RateLimitBackendError):
                if token is not None:
                    await give_back(token)
                if last:
                    await leave()
            raise
        if logger.isEnabledFor(self.level):
            waited = clock.monotonic() - start
            logger.log(self.level, "%s: waited %.3f s for %s", self.name, waited, self.unit)
        return waiter.token

    async def _hand_out(self, tokens: Sequence[str], give_back: GiveBack) -> None:
        unused: list[str] = []
        with self._lock:
            for token in tokens:
                taker = self._queue.grant_head()
                if taker is None:
                    unused.append(token)  # its waiter left meanwhile
                else:
                    taker.token = token
            self._queue.wake_head()
        if unused:
            with anyio.CancelScope(shield=True), contextlib.suppress(RateLimitBackendError):
                for token in unused:
                    await give_back(token)

    def wake_head(self, *, only_untimed: bool = False) -> None:
        """Something changed here: the head looks at the store again (``only_untimed``:
        unless it sleeps until a moment the store named)."""
        if not self._queue.live:
            # Safe without the lock: a waiter queues before it asks the store, and the
            # change that calls this was made in the store before this check.
            return
        with self._lock:
            self._queue.wake_head(only_untimed=only_untimed)

    def interrupt(self, error: ErrorSource) -> None:
        """Make every caller queued right now raise ``error`` (an account-wide block)."""
        with self._lock:
            self._queue.interrupt(error)
