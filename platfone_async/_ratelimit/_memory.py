"""The memory store (the default): one key's state in this process.

:class:`WindowBook` is one endpoint's bucket, whose tokens come back one period after the
response. Why stamp at the response: the server counts a request when it *arrives*,
somewhere between our send and the response. A token spent on a request returns
``period + margin`` after that request's response arrived (or it failed), so its next
use arrives at the server more than one ``period`` after the previous one, whatever the
latency. With ``calls`` tokens, no rolling window of ``period`` at the server ever holds
more than ``calls`` arrivals, while a burst of ``calls`` leaves at once.

:class:`SlotBook` is the 20-active-activations limit as a counted resource. A slot is
taken before an order leaves, then bound to the activation the server opened (it is
then named by the activation's id) or released. A bound slot comes back when the SDK sees
the activation end or by itself once ``expire_at`` (plus a small grace) has passed.
Activations opened elsewhere also count on the server: when the server still refuses an
order with TooManyActivations, :meth:`SlotBook.server_full` takes what is not ours as
*external*, so orders wait for one of ours to end; every ``probe_interval`` seconds one
external slot is presumed gone and one extra order may leave (a guarded re-probe).

Neither waits: :class:`~platfone_async._ratelimit._wait.Gate` queues the callers. Both
are guarded by a :class:`threading.Lock` (clients on several loop threads share a key).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence

import attrs

from .._clock import Clock
from .._errors import AccountBlockedError
from ._state import LimiterState, SlotsState
from ._store import (
    FLIGHT_KEEP,
    JOURNAL_KEEP,
    SPEND_KEPT,
    Flight,
    JournalEntry,
    RateLimit,
    SpendTake,
    StoreSnapshot,
    Take,
    order_landed_in_steps,
)
from ._success import SuccessRateTracker

__all__ = [
    "DEFAULT_MARGIN",
    "InMemoryBackend",
    "MemoryStore",
    "SlotBook",
    "WindowBook",
    "blocked_error",
    "default_margin",
    "spend_room_in",
]

#: The largest margin added to a token's return time, in seconds.
DEFAULT_MARGIN = 0.05
#: How long handed-out ids are remembered.
KNOWN_FOR = 3_600.0

_NONE: tuple[str, ...] = ()
_ONE: tuple[str, ...] = ("",)
_GRANT_ONE = Take(_ONE, None)


def default_margin(period: float) -> float:
    """50 ms, or 0.5 % of ``period`` when that is less (short test periods lose little)."""
    return min(DEFAULT_MARGIN, period * 0.005)


class WindowBook:
    """At most ``calls`` tokens in use or spent within the last ``period + margin``
    (on ``clock.monotonic()``). Its tokens have no names (``""``)."""

    __slots__ = (
        "_blocked_until",
        "_hold",
        "_in_use",
        "_lock",
        "_returns",
        "calls",
        "clock",
        "margin",
        "name",
        "period",
    )

    def __init__(
        self, calls: int, period: float, *, clock: Clock, margin: float | None, name: str
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
        self.clock = clock
        self._hold = self.period + margin
        self._in_use = 0
        # Return times of spent tokens, in order: stamps only grow, the hold is constant.
        self._returns: deque[float] = deque()
        self._blocked_until = -math.inf
        self._lock = threading.Lock()

    def take(self, want: int) -> Take:
        with self._lock:
            now = self.clock.monotonic()
            if now < self._blocked_until:
                return Take(_NONE, self._blocked_until - now)
            free = self._free(now)
            if free > 0:
                n = min(want, free)
                self._in_use += n
                return _GRANT_ONE if n == 1 else Take(_ONE * n, None)
            return Take(_NONE, self._returns[0] - now if self._returns else None)

    def give_back(self, *, spent: bool) -> None:
        with self._lock:
            self._in_use -= 1
            if spent:
                self._returns.append(self.clock.monotonic() + self._hold)

    def block_until(self, deadline: float) -> None:
        """Grant nothing before ``deadline`` (``clock.monotonic()``); a later one extends."""
        with self._lock:
            if deadline > self._blocked_until:
                self._blocked_until = deadline

    def state(self, waiters: int) -> LimiterState:
        with self._lock:
            now = self.clock.monotonic()
            free = self._free(now)
            blocked_for = max(0.0, self._blocked_until - now)
            return LimiterState(
                name=self.name,
                calls=self.calls,
                period=self.period,
                available=0 if blocked_for > 0 else free,
                in_use=self._in_use,
                cooling=len(self._returns),
                waiters=waiters,
                blocked_for=blocked_for,
                next_return_in=self._returns[0] - now if self._returns else None,
            )

    def _free(self, now: float) -> int:
        returns = self._returns
        while returns and returns[0] <= now:
            returns.popleft()
        return self.calls - self._in_use - len(returns)


class SlotBook:
    """``capacity`` slots for active activations, named by their order (``member``) and
    then by their activation's id. A bound slot comes back ``expiry_grace`` seconds
    after its ``expire_at`` (Unix seconds; the server needs a moment to expire it too)."""

    def __init__(
        self,
        capacity: int,
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
        self._pending: set[str] = set()  # orders in flight
        self._bound: dict[str, float | None] = {}  # activation id -> expire_at
        self._expiries: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._external = 0
        self._probe_at = math.inf
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SlotBook {self.held}/{self.capacity - self._external} in use>"

    @property
    def held(self) -> int:
        return len(self._pending) + len(self._bound)

    def holds(self, member: str) -> bool:
        """Whether the slot ``member`` is taken (it may have expired just now)."""
        with self.lock:
            self._expire()
            return member in self._pending or member in self._bound

    def take(self, member: str) -> Take:
        with self.lock:
            now = self._clock.monotonic()
            if self._free(now, probe=True) > 0:
                self._pending.add(member)
                return Take((member,), None)
            return Take(_NONE, self._head_delay(now))

    def bind(self, member: str, activation_id: str, expire_at: float | None) -> None:
        with self.lock:
            self._pending.discard(member)
            self._bound.pop(member, None)
            self._bound[activation_id] = expire_at  # one activation never holds two slots
            if expire_at is not None:
                heapq.heappush(self._expiries, (expire_at, next(self._seq), activation_id))

    def release(self, member: str) -> None:
        with self.lock:
            self._pending.discard(member)
            self._bound.pop(member, None)

    def observe(self, activation_id: str, *, ended: bool, expire_at: float | None) -> bool:
        """True when the slot of ``activation_id`` came back."""
        with self.lock:
            if activation_id not in self._bound:
                return False
            if ended:
                del self._bound[activation_id]
                return True
            if expire_at is not None and expire_at != self._bound[activation_id]:
                self._bound[activation_id] = expire_at
                heapq.heappush(self._expiries, (expire_at, next(self._seq), activation_id))
            return False

    def server_full(self, member: str | None) -> None:
        with self.lock:
            if member is not None:
                self._pending.discard(member)
                self._bound.pop(member, None)
            self._external = max(0, self.capacity - self.held)
            self._probe_at = self._clock.monotonic() + self.probe_interval

    def learn_server_count(self, active: int) -> None:
        with self.lock:
            self._external = min(self.capacity, max(0, active - len(self._bound)))
            self._probe_at = self._clock.monotonic() + self.probe_interval

    def state(self, waiters: int) -> SlotsState:
        with self.lock:
            now = self._clock.monotonic()
            free = self._free(now, probe=False)
            next_expiry = self._next_expiry()
            return SlotsState(
                capacity=self.capacity,
                effective_capacity=self.capacity - self._external,
                external=self._external,
                in_use=self.held,
                bound=len(self._bound),
                available=max(0, free),
                waiters=waiters,
                next_expiry_in=None if next_expiry is None else next_expiry - self._clock.time(),
            )

    # -- internals (expect the lock held) --

    def _free(self, now: float, *, probe: bool) -> int:
        """Free slots now; with ``probe``, a due re-probe presumes one external slot gone."""
        self._expire()
        held = self.held
        free = self.capacity - self._external - held
        if probe and free <= 0 and self._external > 0 and now >= self._probe_at:
            self._external = max(0, min(self._external - 1, self.capacity - held - 1))
            self._probe_at = now + self.probe_interval if self._external else math.inf
            free = self.capacity - self._external - held
        return free

    def _valid(self, entry: tuple[float, int, str]) -> bool:
        expire_at, _, activation_id = entry
        return activation_id in self._bound and self._bound[activation_id] == expire_at

    def _expire(self) -> None:
        expiries = self._expiries
        cutoff = self._clock.time() - self.expiry_grace
        while expiries and expiries[0][0] <= cutoff:
            entry = heapq.heappop(expiries)
            if self._valid(entry):
                del self._bound[entry[2]]

    def _next_expiry(self) -> float | None:
        expiries = self._expiries
        while expiries:
            if self._valid(expiries[0]):
                return expiries[0][0] + self.expiry_grace
            heapq.heappop(expiries)
        return None

    def _head_delay(self, now: float) -> float | None:
        candidates = []
        next_expiry = self._next_expiry()
        if next_expiry is not None:
            candidates.append(next_expiry - self._clock.time())
        if self._external > 0:
            candidates.append(self._probe_at - now)
        return max(0.0, min(candidates)) if candidates else None


def spend_room_in(
    counted: Sequence[tuple[float, int]], price: int, cents: int, period: float, now: float
) -> float | None:
    """Seconds until enough of the money ``counted`` (``(at, cents)``, oldest first)
    leaves the period for ``price`` to fit within ``cents``; None if it never fits."""
    if price > cents:
        return None
    left = sum(amount for _, amount in counted)
    for at, amount in counted:
        left -= amount
        if left + price <= cents:
            return max(0.0, at + period - now)
    return 0.0


def blocked_error(message: str, until: float) -> BaseException:
    """The error of an account block seen in the store (not raised by this process)."""
    reset_at = None if math.isinf(until) else dt.datetime.fromtimestamp(until, dt.timezone.utc)
    return AccountBlockedError(
        message or "the account is blocked (low SMS success rate), seen by another worker",
        status_code=429,
        error_name="LowSuccessRateException",
        reset_at=reset_at,
    )


class MemoryStore:
    """One key's state in this process (see the module doc and ``_store.KeyStore``)."""

    durable = False

    def __init__(self, clock: Clock, margin: float | None = None) -> None:
        self._clock = clock
        self._margin = margin
        self._owner = uuid.uuid4().hex
        self._windows: dict[str, WindowBook] = {}
        self.slots = SlotBook(20, clock=clock)
        self.success = SuccessRateTracker(clock=clock)
        self._account: tuple[str, float] | None = None
        self._claims: dict[str, float] = {}
        # name -> (offer, when it left, the slot its order holds)
        self._flights: dict[str, tuple[str, float, str | None]] = {}
        self._journal: dict[str, tuple[str, float]] = {}  # id -> (record, expire_at)
        self._lock = threading.Lock()
        self._spent: dict[str, tuple[float, int]] = {}  # entry or activation id -> (at, cents)

    @property
    def owner(self) -> str:
        return self._owner

    def window(self, name: str, limit: RateLimit) -> WindowBook:
        book = self._windows.get(name)
        if book is None:
            with self._lock:
                book = self._windows.get(name)
                if book is None:
                    book = self._windows[name] = WindowBook(
                        limit.calls, limit.period, clock=self._clock, margin=self._margin, name=name
                    )
        return book

    async def window_take(self, name: str, limit: RateLimit, want: int) -> Take:
        return self.window(name, limit).take(want)

    async def window_return(self, name: str, limit: RateLimit, token: str, *, spent: bool) -> None:
        self.window(name, limit).give_back(spent=spent)

    async def window_leave(self, name: str) -> None:
        return None

    async def window_block(self, name: str, limit: RateLimit, seconds: float) -> None:
        self.window(name, limit).block_until(self._clock.monotonic() + seconds)

    async def slot_take(self, capacity: int) -> Take:
        blocked = self._blocked()
        if blocked is not None:
            raise blocked_error(*blocked)
        self.slots.capacity = capacity
        return self.slots.take("order:" + uuid.uuid4().hex)

    async def slot_leave(self) -> None:
        return None

    async def slot_bind(self, member: str, activation_id: str, expire_at: float | None) -> None:
        self.slots.bind(member, activation_id, expire_at)

    async def slot_release(self, member: str) -> None:
        self.slots.release(member)

    async def slot_observe(
        self, activation_id: str, *, ended: bool, expire_at: float | None
    ) -> None:
        self.slots.observe(activation_id, ended=ended, expire_at=expire_at)

    async def slots_full(self, capacity: int, member: str | None) -> None:
        self.slots.capacity = capacity
        self.slots.server_full(member)

    async def account_block(self, message: str, until: float | None) -> None:
        with self._lock:
            self._account = (message, math.inf if until is None else until)

    async def account_unblock(self) -> None:
        with self._lock:
            self._account = None

    async def account_read(self) -> tuple[str, float] | None:
        return self._blocked()

    def _blocked(self) -> tuple[str, float] | None:
        with self._lock:
            if self._account is not None and self._account[1] <= self._clock.time():
                self._account = None
            return self._account

    async def record_order(self, activation_id: str) -> None:
        self.success.record_order(activation_id)

    async def record_sms(self, activation_id: str) -> None:
        self.success.record_sms(activation_id)

    async def success_counts(self) -> tuple[int, int]:
        state = self.success.state()
        return state.orders, state.successes

    async def claim(self, activation_ids: Sequence[str]) -> list[bool]:
        now = self._clock.time()
        with self._lock:
            self._forget(now)
            claimed = []
            for activation_id in activation_ids:
                claimed.append(activation_id not in self._claims)
                self._claims.setdefault(activation_id, now)
            return claimed

    async def known(self, activation_ids: Sequence[str]) -> set[str]:
        with self._lock:
            self._forget(self._clock.time())
            return {aid for aid in activation_ids if aid in self._claims}

    def _forget(self, now: float) -> None:
        if self._claims and next(iter(self._claims.values())) <= now - KNOWN_FOR:
            cutoff = now - KNOWN_FOR
            self._claims = {aid: at for aid, at in self._claims.items() if at > cutoff}

    async def flight_start(self, offer: str, slot: str | None = None) -> str:
        flight, now = uuid.uuid4().hex, self._clock.time()
        with self._lock:
            if self._flights and next(iter(self._flights.values()))[1] <= now - FLIGHT_KEEP:
                kept = {f: v for f, v in self._flights.items() if v[1] > now - FLIGHT_KEEP}
                self._flights = kept
            self._flights[flight] = (offer, now, slot)
        return flight

    async def flight_end(self, flight: str) -> None:
        with self._lock:
            self._flights.pop(flight, None)

    async def order_landed(
        self,
        flight: str | None,
        slot: str | None,
        activation_id: str,
        record: str,
        expire_at: float,
    ) -> bool:
        return await order_landed_in_steps(self, flight, slot, activation_id, record, expire_at)

    async def flights_elsewhere(self) -> list[str]:
        return []  # every flight of a memory store is its own owner's

    async def flights_orphaned(self) -> list[str]:
        return []  # its owner is this process

    async def flights_list(self) -> list[Flight]:
        with self._lock:
            return [
                Flight(name, offer, left, self._owner, True, slot)
                for name, (offer, left, slot) in self._flights.items()
            ]

    async def snapshot(self, limits: Mapping[str, RateLimit], capacity: int) -> StoreSnapshot:
        self.slots.capacity = capacity
        windows = {name: self.window(name, limit).state(0) for name, limit in limits.items()}
        orders, successes = await self.success_counts()
        blocked = self._blocked()
        blocked_for = 0.0 if blocked is None else blocked[1] - self._clock.time()
        return StoreSnapshot(windows, self.slots.state(0), orders, successes, blocked_for)

    async def aclose(self) -> None:
        return None

    # -- the journal: this process's own numbers (nothing outlives the process) --

    async def journal_put(self, activation_id: str, record: str, expire_at: float) -> None:
        with self._lock:
            self._journal[activation_id] = (record, expire_at)

    async def journal_update(self, records: Mapping[str, tuple[str, float]]) -> None:
        with self._lock:
            for activation_id, entry in records.items():
                if activation_id in self._journal:
                    self._journal[activation_id] = entry

    async def journal_remove(self, activation_ids: Sequence[str]) -> None:
        with self._lock:
            for activation_id in activation_ids:
                self._journal.pop(activation_id, None)

    async def journal_list(self) -> list[JournalEntry]:
        cutoff = self._clock.time() - JOURNAL_KEEP
        with self._lock:
            self._journal = {a: e for a, e in self._journal.items() if e[1] > cutoff}
            return [JournalEntry(a, e[0], self._owner, True) for a, e in self._journal.items()]

    async def journal_take(self, activation_ids: Sequence[str]) -> list[bool]:
        with self._lock:  # every entry is this owner's, and it lives
            return [activation_id in self._journal for activation_id in activation_ids]

    # -- spending --

    def _counted(self, period: float, now: float) -> list[tuple[float, int]]:
        """The money within ``period``, oldest first (expects the lock held)."""
        if self._spent:
            kept = now - SPEND_KEPT
            self._spent = {n: e for n, e in self._spent.items() if e[0] > kept}
        since = now - period
        return sorted(e for e in self._spent.values() if e[0] > since)

    async def spend_take(self, cents: int, period: float, price: int) -> SpendTake:
        now = self._clock.time()
        with self._lock:
            counted = self._counted(period, now)
            total = sum(amount for _, amount in counted)
            if total + price > cents:
                return SpendTake(None, total, spend_room_in(counted, price, cents, period, now))
            entry = "spend:" + uuid.uuid4().hex
            self._spent[entry] = (now, price)
            return SpendTake(entry, total, None)

    async def spend_bind(self, entry: str, activation_id: str, price: int) -> None:
        with self._lock:
            self._spent.pop(entry, None)
            self._spent[activation_id] = (self._clock.time(), price)

    async def spend_release(self, name: str) -> None:
        with self._lock:
            self._spent.pop(name, None)

    async def spend_counted(self, period: float) -> int:
        with self._lock:
            return sum(amount for _, amount in self._counted(period, self._clock.time()))

    # -- end of spending --


@attrs.frozen(kw_only=True)
class InMemoryBackend:
    """State in this process (the default). ``margin``: added to a spent token's hold.

    Two backends with the same settings are equal, so clients that each build their own
    still share one key's state.
    """

    margin: float | None = None

    def open_store(self, scope: str, clock: Clock) -> MemoryStore:
        return MemoryStore(clock, self.margin)

    async def aclose(self) -> None:
        return None
