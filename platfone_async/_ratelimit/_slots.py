"""The 20-active-activations limit as a counted resource.

An order takes a slot before it leaves (:meth:`ActivationSlots.acquire`, first come,
first served, optionally with a timeout). The slot is then bound to the activation the
server opened (:meth:`SlotToken.bind`) or released when the order failed. A bound slot
comes back when the SDK sees the activation end (:meth:`ActivationSlots.observe`) or by
itself once ``expire_at`` (plus a small grace) has passed on ``clock.time()``.

Activations opened elsewhere (another process, the dashboard) also count on the server.
When the server still refuses an order with TooManyActivations, :meth:`server_full`
takes what is not ours as *external*: the effective capacity shrinks to the slots held
here, so orders wait for one of ours to end instead of drawing more 429s. Every
``probe_interval`` seconds while someone waits, one external slot is presumed gone and
one extra order may leave (a guarded re-probe); if the server refuses it too, the count
is learned again. :meth:`learn_server_count` sets the count outright when the caller
knows how many activations are active on the server.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from datetime import datetime
from typing import TYPE_CHECKING

import anyio

from .._clock import Clock
from ._wait import ErrorSource, Waiter, WaitQueue, logger, make_error

if TYPE_CHECKING:
    from ._state import SlotsState

__all__ = ["ActivationSlots", "SlotToken"]

_HELD, _BOUND, _RELEASED = "held", "bound", "released"


def _unix(moment: float | datetime) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


class SlotToken:
    """One slot, held from before an order until its activation ends."""

    __slots__ = ("_slots", "_state", "activation_id", "expire_at")

    def __init__(self, slots: ActivationSlots) -> None:
        self._slots = slots
        self._state = _HELD
        self.activation_id: str | None = None
        self.expire_at: float | None = None

    def __repr__(self) -> str:
        return f"<SlotToken {self._state} activation_id={self.activation_id!r}>"

    @property
    def released(self) -> bool:
        return self._state == _RELEASED

    def bind(self, activation_id: str, expire_at: float | datetime | None) -> None:
        """Tie the slot to the activation the order opened (expiry as Unix seconds or UTC).

        ``expire_at=None`` means no automatic return: only :meth:`ActivationSlots.observe`
        or :meth:`release` bring the slot back. Raises RuntimeError once released.
        """
        expire = None if expire_at is None else _unix(expire_at)
        with self._slots._lock:
            if self._state == _RELEASED:
                raise RuntimeError("this activation slot was already released")
            self._slots._bind(self, activation_id, expire)

    def release(self) -> None:
        """Give the slot back (the order failed, or the activation ended). Idempotent."""
        with self._slots._lock:
            if self._state != _RELEASED:
                self._slots._release(self)


class ActivationSlots:
    """``capacity`` slots for active activations, shared by every order on one key.

    ``acquire(timeout=None)`` waits, first come first served, for a slot and returns a
    :class:`SlotToken`; with a ``timeout`` (clock seconds; 0 means do not wait) it raises
    :class:`TimeoutError` when none came in time. A waiter cancelled or timed out takes
    no slot. A bound slot comes back ``expiry_grace`` seconds after its ``expire_at``
    (the server needs a moment to expire it too).
    """

    def __init__(
        self,
        capacity: int = 20,
        *,
        clock: Clock,
        expiry_grace: float = 5.0,
        probe_interval: float = 10.0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity!r}")
        self.capacity = capacity
        self.expiry_grace = float(expiry_grace)
        self.probe_interval = float(probe_interval)
        self._clock = clock
        self._held = 0
        self._bound: dict[str, SlotToken] = {}
        self._expiries: list[tuple[float, int, SlotToken]] = []
        self._seq = itertools.count()
        self._external = 0
        self._probe_at = math.inf
        self._queue = WaitQueue()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ActivationSlots {self._held}/{self.capacity - self._external} in use>"

    async def acquire(self, timeout: float | None = None) -> SlotToken:
        """Wait for a free slot (FIFO); TimeoutError after ``timeout`` clock seconds."""
        clock = self._clock
        with self._lock:
            start = clock.monotonic()
            if self._queue.live == 0 and self._free(start, probe=True) > 0:
                self._held += 1
                return SlotToken(self)
            if timeout is not None and timeout <= 0:
                raise TimeoutError("no free activation slot")
            waiter = Waiter()
            self._queue.push(waiter)
        await self._wait(waiter, start, None if timeout is None else start + timeout)
        return SlotToken(self)

    def observe(
        self, activation_id: str, *, ended: bool, expire_at: float | datetime | None = None
    ) -> None:
        """Note a state of an activation the SDK saw in any response.

        ``ended`` (finalized, cancelled, expired) releases its slot; otherwise a changed
        ``expire_at`` moves its automatic return. Activations not bound here are ignored.
        """
        expire = None if expire_at is None else _unix(expire_at)
        with self._lock:
            token = self._bound.get(activation_id)
            if token is None:
                return
            if ended:
                self._release(token)
            elif expire is not None and expire != token.expire_at:
                self._bind(token, activation_id, expire)

    def server_full(self, token: SlotToken | None = None) -> None:
        """The server refused an order with TooManyActivations (``token``: that order's slot).

        Releases ``token``, then counts every slot not held here as external, so new orders
        wait for one of ours to end or for the next guarded re-probe.
        """
        with self._lock:
            if token is not None and not token.released:
                self._release(token, dispatch=False)
            self._external = max(0, self.capacity - self._held)
            self._probe_at = self._clock.monotonic() + self.probe_interval
            self._dispatch()

    def learn_server_count(self, active: int) -> None:
        """The server holds ``active`` activations on this key, ours included."""
        with self._lock:
            self._external = min(self.capacity, max(0, active - len(self._bound)))
            self._probe_at = self._clock.monotonic() + self.probe_interval
            self._dispatch()

    def interrupt(self, error: ErrorSource) -> None:
        """Make every caller queued right now raise ``error`` (an account-wide block)."""
        with self._lock:
            self._queue.interrupt(error)

    def state(self) -> SlotsState:
        """A snapshot of the slots and the queue."""
        with self._lock:
            return self._state_locked()

    # -- internals (the underscore methods expect the lock held) --------------------------

    def _state_locked(self) -> SlotsState:
        now = self._clock.monotonic()
        free = self._free(now, probe=False)
        effective = self.capacity - self._external
        next_expiry = self._next_expiry()
        from ._state import SlotsState

        return SlotsState(
            capacity=self.capacity,
            effective_capacity=effective,
            external=self._external,
            in_use=self._held,
            bound=len(self._bound),
            available=max(0, free),
            waiters=self._queue.live,
            next_expiry_in=None if next_expiry is None else next_expiry - self._clock.time(),
        )

    def _free(self, now: float, *, probe: bool) -> int:
        """Free slots now; with ``probe``, a due re-probe presumes one external slot gone."""
        self._expire()
        free = self.capacity - self._external - self._held
        if probe and free <= 0 and self._external > 0 and now >= self._probe_at:
            self._external = max(0, min(self._external - 1, self.capacity - self._held - 1))
            self._probe_at = now + self.probe_interval if self._external else math.inf
            free = self.capacity - self._external - self._held
        return free

    def _expire(self) -> int:
        """Release the bound slots whose activation has expired; how many."""
        expiries = self._expiries
        if not expiries:
            return 0
        released = 0
        cutoff = self._clock.time() - self.expiry_grace
        while expiries and expiries[0][0] <= cutoff:
            expire_at, _, token = heapq.heappop(expiries)
            if token._state == _BOUND and token.expire_at == expire_at:
                self._release(token, dispatch=False)
                released += 1
        return released

    def _next_expiry(self) -> float | None:
        """When (Unix seconds) the next bound slot comes back by itself."""
        expiries = self._expiries
        while expiries:
            expire_at, _, token = expiries[0]
            if token._state == _BOUND and token.expire_at == expire_at:
                return expire_at + self.expiry_grace
            heapq.heappop(expiries)
        return None

    def _bind(self, token: SlotToken, activation_id: str, expire_at: float | None) -> None:
        other = self._bound.get(activation_id)
        if other is not None and other is not token:
            self._release(other, dispatch=False)  # one activation never holds two slots
        if token.activation_id is not None and token.activation_id != activation_id:
            self._bound.pop(token.activation_id, None)
        token._state = _BOUND
        token.activation_id = activation_id
        token.expire_at = expire_at
        self._bound[activation_id] = token
        if expire_at is not None:
            heapq.heappush(self._expiries, (expire_at, next(self._seq), token))
        self._dispatch()

    def _release(self, token: SlotToken, *, dispatch: bool = True) -> None:
        activation_id = token.activation_id
        if activation_id is not None and self._bound.get(activation_id) is token:
            del self._bound[activation_id]
        token._state = _RELEASED
        self._held -= 1
        if dispatch:
            self._dispatch()

    def _dispatch(self) -> bool:
        """Hand free slots to the queue in order, then let the new head plan its timer.

        True when a slot was handed out.
        """
        queue = self._queue
        if not queue.live:
            return False
        granted = False
        free = self._free(self._clock.monotonic(), probe=True)
        while free > 0 and queue.grant_head() is not None:
            self._held += 1
            free -= 1
            granted = True
        queue.wake_head()
        return granted

    def _head_delay(self, now: float) -> float | None:
        """How long the head may sleep before a slot can come back by itself."""
        candidates = []
        next_expiry = self._next_expiry()
        if next_expiry is not None:
            candidates.append(next_expiry - self._clock.time())
        if self._external > 0:
            candidates.append(self._probe_at - now)
        return min(candidates) if candidates else None

    async def _wait(self, waiter: Waiter, start: float, deadline: float | None) -> None:
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
                    now = clock.monotonic()
                    if deadline is not None and now >= deadline:
                        raise TimeoutError("no free activation slot in time")
                    delay: float | None = None
                    if queue.head() is waiter:
                        if self._dispatch():
                            continue  # to the head first: that is us
                        delay = self._head_delay(now)
                    if deadline is not None:
                        delay = deadline - now if delay is None else min(delay, deadline - now)
                await waiter.park(clock, delay)
            # Cancelled while the grant was on its way: leave now, handing the grant on.
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            with lock:
                if waiter.granted:
                    self._held -= 1  # granted but never used: straight back
                else:
                    queue.abandon(waiter)
                self._dispatch()
            raise
        if logger.isEnabledFor(20):  # INFO
            waited = clock.monotonic() - start
            logger.info("activation slots: waited %.3f s for a free slot", waited)
