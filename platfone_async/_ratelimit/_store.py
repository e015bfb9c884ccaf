"""The store seam: every operation one key's state needs, whichever store keeps it.

A :class:`KeyStore` holds one API key's state (at one base URL): the endpoint windows,
the active-activation slots, the endpoint and account blocks, the success-rate counts,
the ids handed out to callers (claims) and the orders in flight. Its operations never
wait: a ``*_take`` either grants or says how long until asking again is worth it, and
the one generic wait loop (:class:`~platfone_async._ratelimit._wait.Gate`) queues the
callers of this process first come, first served over it. A :class:`RateLimitBackend`
opens a store per key: in memory (``_memory``) or in Redis (``_redis``).

Every operation may raise :class:`~platfone_async.RateLimitBackendError` when a shared
store cannot be reached; a store that falls back to in-process limits does so inside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

import attrs

from .._clock import Clock
from ._state import LimiterState, SlotsState

__all__ = [
    "FLIGHT_KEEP",
    "Flight",
    "JOURNAL_KEEP",
    "JournalEntry",
    "KeyStore",
    "RateLimit",
    "RateLimitBackend",
    "SPEND_KEPT",
    "SpendTake",
    "StoreSnapshot",
    "Take",
    "order_landed_in_steps",
]


def _float(value: float) -> float:
    # Not `converter=float`: attrs reads a converter's signature, and a builtin's is parsed
    # from its text by `tokenize`, whose first use compiles a large regex (~2 ms at import).
    return float(value)


@attrs.frozen
class RateLimit:
    """At most ``calls`` requests in any rolling window of ``period`` seconds."""

    calls: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    period: float = attrs.field(converter=_float, validator=attrs.validators.gt(0.0))


class Take(NamedTuple):
    """What a ``*_take`` got: the ``granted`` tokens (none, or up to the number asked
    for), else ``retry_in`` - seconds until asking again is worth it, or None when only a
    change made in this process (a token returned, a slot freed) can free one."""

    granted: Sequence[str]
    retry_in: float | None


class SpendTake(NamedTuple):
    """What a ``spend_take`` got: the ``entry`` naming the order's money (None: refused),
    the cents ``counted`` within the period before it, and - when refused - ``room_in``,
    seconds until enough of that money leaves the period for it (None: the price alone is
    over the limit)."""

    entry: str | None
    counted: int
    room_in: float | None


#: How long a store keeps the money it counts (the longest ``SpendLimit.period``).
SPEND_KEPT = 31 * 86_400.0


class StoreSnapshot(NamedTuple):
    """A store's view of one key for dashboards (waiters queued in this process are the
    caller's to add): windows by endpoint, slots, success counts, account block."""

    windows: Mapping[str, LimiterState]
    slots: SlotsState
    orders: int
    successes: int
    account_blocked_for: float


#: How long past its ``expire_at`` a journaled number is kept (an SMS billed before it
#: expired still has a code to deliver); later it is dropped unseen.
JOURNAL_KEEP = 86_400.0


class JournalEntry(NamedTuple):
    """A number in the journal: its id, the ``record`` last written (the activation as
    the API's JSON), its ``owner``, and whether that owner's lease runs (``alive``; an
    entry of the store's own owner is always alive)."""

    activation_id: str
    record: str
    owner: str
    alive: bool


#: How long an order's flight is kept after it left when no one ends it (its process
#: died in flight): an activation's life (20 min) and a margin, for ``recover()`` to find
#: the number it may have opened.
FLIGHT_KEEP = 30 * 60.0


class Flight(NamedTuple):
    """An order in flight: its ``name`` (to end it with), its ``offer``
    (``service|country|max_price``), when it ``left`` (Unix seconds on the store's clock),
    its ``owner``, whether that owner's lease runs (``alive``; always, for the store's
    own owner), and the ``slot`` its order holds (the slot's member; None without one).
    A lapsed owner's flight stays until a recovery ends it (or ``FLIGHT_KEEP`` after it
    left): the recovery binds its slot to the number it placed, or frees it."""

    name: str
    offer: str
    left: float
    owner: str
    alive: bool
    slot: str | None = None


class KeyStore(Protocol):
    """One key's state. ``limit`` travels with each window operation (a store keys its
    windows by endpoint ``name``); times are seconds; ``expire_at`` and ``until`` are Unix
    seconds. ``owner`` names this store's holder (one per process and key): flights and
    claims are told apart by it, and a shared store counts them only while their owner's
    lease runs (``_lease``: renewed by a heartbeat, lapsed ~30 s after a process died).
    The journal of open numbers (crash recovery) is the last block."""

    @property
    def owner(self) -> str: ...

    #: Whether what the store holds outlives this process (a file, a server): its journal
    #: is then there for ``recover()`` after a crash.
    durable: bool

    # -- endpoint windows: a token comes back one period after the response --

    async def window_take(self, name: str, limit: RateLimit, want: int) -> Take:
        """Up to ``want`` tokens of ``name``, each in use until :meth:`window_return`."""
        ...

    async def window_return(self, name: str, limit: RateLimit, token: str, *, spent: bool) -> None:
        """Give a token back: ``spent`` (a request went out) stamps it to come back one
        period (plus margin) from now; unspent, it is free at once."""
        ...

    async def window_leave(self, name: str) -> None:
        """This process has no one waiting for ``name`` any more."""
        ...

    async def window_block(self, name: str, limit: RateLimit, seconds: float) -> None:
        """A server 429: grant nothing of ``name`` for ``seconds`` (a later end extends)."""
        ...

    # -- the active-activation slots --

    async def slot_take(self, capacity: int) -> Take:
        """One slot (granted as its name, the order's ``member``), or how long to wait.
        Raises the account block's error while the account is blocked."""
        ...

    async def slot_leave(self) -> None:
        """This process has no one waiting for a slot any more."""
        ...

    async def slot_bind(self, member: str, activation_id: str, expire_at: float | None) -> None:
        """Tie the slot ``member`` to the activation its order opened (it is then named by
        ``activation_id``); None: no automatic return."""
        ...

    async def slot_release(self, member: str) -> None:
        """Free the slot ``member`` (idempotent)."""
        ...

    async def slot_observe(
        self, activation_id: str, *, ended: bool, expire_at: float | None
    ) -> None:
        """An activation was seen: free its slot when it ended, else move its expiry."""
        ...

    async def slots_full(self, capacity: int, member: str | None) -> None:
        """The server refused an order (slot ``member``) with TooManyActivations: free
        it and count what this key does not hold as held elsewhere until a re-probe."""
        ...

    # -- the account block --

    async def account_block(self, message: str, until: float | None) -> None:
        """Block the account until ``until`` (None: until :meth:`account_unblock`)."""
        ...

    async def account_unblock(self) -> None: ...

    async def account_read(self) -> tuple[str, float] | None:
        """``(message, until)`` while the account is blocked (``until`` inf: by hand)."""
        ...

    # -- the success rate --

    async def record_order(self, activation_id: str) -> None: ...

    async def record_sms(self, activation_id: str) -> None:
        """A first SMS on an activation recorded as ordered (others are ignored)."""
        ...

    async def success_counts(self) -> tuple[int, int]:
        """(orders, successes) over the last 24 h."""
        ...

    # -- handed-out ids and orders in flight --

    async def claim(self, activation_ids: Sequence[str]) -> list[bool]:
        """Claim ids as handed out: False for an id claimed before (by anyone)."""
        ...

    async def known(self, activation_ids: Sequence[str]) -> set[str]:
        """The ids among these that were claimed."""
        ...

    async def flight_start(self, offer: str, slot: str | None = None) -> str:
        """An order of ``offer`` is about to leave (stamped now, on the store's clock),
        holding the slot ``slot`` (its member; None: none); the flight's name to end it
        with."""
        ...

    async def flight_end(self, flight: str) -> None:
        """The order landed, or a recovery dealt with a lapsed owner's flight (whoever
        started it; idempotent)."""
        ...

    async def order_landed(
        self,
        flight: str | None,
        slot: str | None,
        activation_id: str,
        record: str,
        expire_at: float,
    ) -> bool:
        """An order's answer opened ``activation_id`` (``record``: its state; ``expire_at``:
        Unix seconds), in one step: the slot ``slot`` bound to it (None: no slot), the id
        claimed, the number journaled as this owner's and counted as an order, and the
        flight ``flight`` ended (None: none). False: a live owner had claimed the id
        first (the rest is done all the same: the server answered this order with it)."""
        ...

    async def flights_list(self) -> list[Flight]:
        """Every order of the key in flight, with its owner and when it left (a lapsed
        owner's kept ``FLIGHT_KEEP``), oldest first."""
        ...

    async def flights_elsewhere(self) -> list[str]:
        """The offers of the orders other owners have in flight."""
        ...

    async def flights_orphaned(self) -> list[str]:
        """The offers of the orders still in flight when their owner's lease lapsed (its
        process died): each may have been placed, and no live owner will claim it."""
        ...

    # -- dashboards --

    async def snapshot(self, limits: Mapping[str, RateLimit], capacity: int) -> StoreSnapshot:
        """The windows of ``limits``, the slots, the counts and the block."""
        ...

    async def aclose(self) -> None:
        """Let go of what this store holds for the running event loop."""
        ...

    # -- the journal of open numbers (crash recovery) --

    async def journal_put(self, activation_id: str, record: str, expire_at: float) -> None:
        """Journal a number this owner opened (``record``: its state; ``expire_at``: Unix
        seconds), renewing this owner's lease (and keeping it renewed from then on)."""
        ...

    async def journal_update(self, records: Mapping[str, tuple[str, float]]) -> None:
        """New states (``record``, ``expire_at``) of journaled numbers, whoever owns
        them; ids not in the journal are ignored."""
        ...

    async def journal_remove(self, activation_ids: Sequence[str]) -> None:
        """Take settled numbers out of the journal (idempotent)."""
        ...

    async def journal_list(self) -> list[JournalEntry]:
        """Every journaled number of the key (dropping those ``JOURNAL_KEEP`` past their
        ``expire_at``), with its owner and whether that owner's lease runs."""
        ...

    async def journal_take(self, activation_ids: Sequence[str]) -> list[bool]:
        """Take over journaled numbers whose owner's lease lapsed: True per id now this
        owner's, False when it is gone or a live owner (maybe another survivor that took
        it first) holds it. Atomic: two owners never take the same number."""
        ...

    # -- spending (``SpendLimit``): money reserved or billed within a rolling period --
    # An entry is an order's money: taken at its price before it leaves, bound to its
    # activation (at the actual price) when it lands, released when the money is (nothing
    # opened, or the number cancelled or expired without an SMS). Entries live at most
    # ``SPEND_KEPT``; live ones within a period are bounded by the largest limit's cents.

    async def spend_take(self, cents: int, period: float, price: int) -> SpendTake:
        """Enter ``price`` if the money entered within the last ``period`` seconds plus it
        stays within ``cents`` (atomically, for every owner of the key); else refuse."""
        ...

    async def spend_bind(self, entry: str, activation_id: str, price: int) -> None:
        """The order of ``entry`` opened ``activation_id`` at ``price``: the entry is then
        named by the activation's id, counts ``price``, and is stamped now."""
        ...

    async def spend_release(self, name: str) -> None:
        """The money of ``name`` (an entry, or an activation's id) was released: it no
        longer counts (idempotent)."""
        ...

    async def spend_counted(self, period: float) -> int:
        """The cents entered within the last ``period`` seconds."""
        ...

    # -- end of spending --


async def order_landed_in_steps(
    store: KeyStore,
    flight: str | None,
    slot: str | None,
    activation_id: str,
    record: str,
    expire_at: float,
) -> bool:
    """:meth:`KeyStore.order_landed` as the store's operations one after another."""
    if slot is not None:
        await store.slot_bind(slot, activation_id, expire_at)
    (claimed,) = await store.claim([activation_id])
    await store.journal_put(activation_id, record, expire_at)
    await store.record_order(activation_id)
    if flight is not None:
        await store.flight_end(flight)
    return claimed


class RateLimitBackend(Protocol):
    """Where keys' state lives: opens the store of one key.

    ``scope`` names the key and base URL without revealing the key (a digest); a shared
    backend keys its state by ``scope`` so that every process on one key shares it.
    Backends are compared by value: clients with equal backends share one key's state.
    """

    def open_store(self, scope: str, clock: Clock) -> KeyStore:
        """The store of the key ``scope``."""
        ...

    async def aclose(self) -> None:
        """Close what the backend opened for the running event loop (connections)."""
        ...
