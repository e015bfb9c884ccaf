"""One key's limits over its store, and the process-wide registry of keys.

:class:`KeyLimits` is the one door the pipeline and the order flow go through for every
per-key promise. It holds this process's queues (a :class:`~._wait.Gate` per endpoint
and one for the slots) and the account block this process saw; everything else lives in
the key's :class:`~._store.KeyStore`, whichever backend opened it. A store operation
that fails (:class:`RateLimitBackendError`) either propagates - nothing is sent - or,
after the request it follows is done, only logs a WARNING.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

import attrs

from .._clock import Clock, SystemClock
from .._errors import RateLimitBackendError
from ._memory import InMemoryBackend, blocked_error
from ._slots import Slot, unix
from ._state import KeyLimitsState, SuccessRateCheck, SuccessRateState
from ._store import (
    Flight,
    JournalEntry,
    KeyStore,
    RateLimit,
    RateLimitBackend,
    SpendTake,
    Take,
)
from ._success import GuardMode, apply_guard, check_counts
from ._wait import ErrorSource, Gate, logger, make_error
from ._window import WindowLimiter

if TYPE_CHECKING:
    from .._reconcile import OrderBook

__all__ = ["DEFAULT_BACKEND", "KeyLimits", "get_key_limits", "key_fingerprint", "offer_of"]

#: The backend used when none is given.
DEFAULT_BACKEND = InMemoryBackend()


class _Unlimited:
    """The permit of an endpoint without a limit: does nothing."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_UNLIMITED = _Unlimited()


class _SeenBlock:
    """The account block this process saw: the error to raise, until when, for which
    endpoints (None: all)."""

    __slots__ = ("endpoints", "error", "until")

    def __init__(self) -> None:
        self.error: ErrorSource | None = None
        self.until = math.inf
        self.endpoints: frozenset[str] | None = None


class _Spending:
    """Whether a client of this process counts spending on the key, and the ids whose
    money it saw released (so that a number polled after its end costs no more writes)."""

    __slots__ = ("on", "released")

    def __init__(self) -> None:
        self.on = False
        self.released: set[str] = set()


class KeyLimits:
    """The limits of one API key and base URL: a limiter per endpoint, the activation
    slots, the success rate, the blocks, the handed-out ids and the orders in flight.

    Get it from :func:`get_key_limits`, which hands every client on the same key, base
    URL, clock and backend the same object. ``key`` is a short digest of the API key: the
    key itself is never stored here.
    """

    def __init__(
        self,
        *,
        key: str,
        base_url: str,
        rate_limits: Mapping[str, RateLimit | None],
        clock: Clock,
        backend: RateLimitBackend = DEFAULT_BACKEND,
        max_active_activations: int = 20,
    ) -> None:
        if max_active_activations < 1:
            raise ValueError(f"capacity must be at least 1, not {max_active_activations!r}")
        self.key = key
        self.base_url = base_url
        self.clock = clock
        self.backend = backend
        self.store: KeyStore = backend.open_store(f"{key}@{base_url}", clock)
        self.slot_capacity = max_active_activations
        self._limits: dict[str, RateLimit | None] = {}
        self._limiters: dict[str, WindowLimiter] = {}
        self._slots = Gate(clock, "activation slots", "a free slot", level=20)
        self._seen = _SeenBlock()  # shared with the views of without_windows()
        self._spending = _Spending()  # (the same)
        self._windows_on = True
        self._root = self
        #: The key's order book (``_reconcile``), made by its first order.
        self.order_book: OrderBook | None = None
        self.add_limits(rate_limits)

    def __repr__(self) -> str:
        return f"<KeyLimits key={self.key} base_url={self.base_url!r}>"

    def without_windows(self) -> KeyLimits:
        """This key's limits for a client with ``rate_limits=None``: every endpoint is
        unlimited for it, all else (slots, blocks, counts, claims) is shared."""
        view = copy.copy(self)  # the same store, gates, tables and block
        view._windows_on = False
        return view

    @property
    def root(self) -> KeyLimits:
        """The shared limits of this key (itself, or what a view looks through)."""
        return self._root

    @property
    def limiters(self) -> Mapping[str, WindowLimiter]:
        """The limiter of every limited endpoint, by method name."""
        return self._limiters

    def add_limits(self, rate_limits: Mapping[str, RateLimit | None]) -> None:
        """Adopt the limits of endpoints not known yet; a known endpoint keeps its first
        limit (a WARNING says when a later mapping disagrees)."""
        for name, limit in rate_limits.items():
            if name not in self._limits:
                self._limits[name] = limit
                if limit is not None:
                    self._limiters[name] = WindowLimiter(self.store, name, limit, self.clock)
            elif self._limits[name] != limit:
                logger.warning(
                    "rate limit for %s on key %s stays %r (set by the first client on "
                    "this key), not %r",
                    name,
                    self.key,
                    self._limits[name],
                    limit,
                )

    def acquire(self, name: str) -> AbstractAsyncContextManager[None]:
        """``async with limits.acquire("get_balance"):`` - a token of that endpoint.

        An endpoint mapped to None, or missing from the mapping, is unlimited. Raises the
        account block's error at once while the account is blocked.
        """
        seen = self._seen
        if seen.error is not None and (seen.endpoints is None or name in seen.endpoints):
            self._raise_if_blocked()
        if not self._windows_on:
            return _UNLIMITED
        limiter = self._limiters.get(name)
        return _UNLIMITED if limiter is None else limiter.acquire()

    # -- the activation slots -----------------------------------------------------------

    async def acquire_slot(self, timeout: float | None = None) -> Slot:
        """A slot under the active-activations limit, first come, first served;
        TimeoutError after ``timeout`` clock seconds (0: do not wait)."""
        if self._seen.error is not None:
            await self._check_block()  # the store may have lifted it meanwhile
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        member = await self._slots.take(
            self._slot_attempt, self._slot_give_back, self.store.slot_leave, deadline=deadline
        )
        return Slot(member)

    async def _slot_attempt(self, want: int) -> Take:
        return await self.store.slot_take(self.slot_capacity)

    async def _slot_give_back(self, member: str) -> None:
        await self.store.slot_release(member)
        self._slots.wake_head()

    async def bind_slot(
        self, slot: Slot, activation_id: str, expire_at: float | datetime | None
    ) -> None:
        """Tie ``slot`` to the activation its order opened."""
        expire = None if expire_at is None else unix(expire_at)
        member = slot.bound_to(activation_id, expire)
        await self._quietly("binding a slot", self.store.slot_bind(member, activation_id, expire))
        self._slots.wake_head()

    async def release_slot(self, slot: Slot) -> None:
        """Give ``slot`` back: its order placed nothing (idempotent)."""
        if slot.released:
            return
        slot.released = True
        await self._quietly("releasing a slot", self.store.slot_release(slot.member))
        self._slots.wake_head()

    async def server_full(self, slot: Slot | None) -> None:
        """The server refused an order with TooManyActivations (``slot``: its slot)."""
        member = None
        if slot is not None and not slot.released:
            slot.released = True
            member = slot.member
        await self._quietly(
            "learning a full account", self.store.slots_full(self.slot_capacity, member)
        )
        self._slots.wake_head()

    async def observe(
        self,
        activation_id: str,
        *,
        ended: bool,
        expire_at: float | datetime | None = None,
        sms: bool = False,
        released: bool = False,
    ) -> bool:
        """An activation's state was seen: free its slot if it ended, move its expiry,
        count its first SMS, stop counting its money once ``released``. Never raises for
        the store: the call it follows is done. False: the store missed some of it."""
        expire = None if expire_at is None else unix(expire_at)
        stored = await self._quietly(
            "noting an activation's state",
            self.store.slot_observe(activation_id, ended=ended, expire_at=expire),
        )
        if ended:
            self._slots.wake_head()
        if sms:
            stored &= await self._quietly("counting an SMS", self.store.record_sms(activation_id))
        if released:
            stored &= await self.spend_release(activation_id)
        return stored

    # -- spending (SpendLimit) ----------------------------------------------------------

    def count_spending(self) -> None:
        """A client of this process has a spend limit: released money is looked for."""
        self._spending.on = True

    async def spend_take(self, cents: int, period: float, price: int) -> SpendTake:
        """Enter an order's ``price`` in the key's spending if it fits ``cents`` per
        ``period`` (see ``KeyStore.spend_take``); raises :class:`RateLimitBackendError`
        (nothing sent)."""
        self._spending.on = True
        return await self.store.spend_take(cents, period, price)

    async def spend_bind(self, entry: str, activation_id: str, price: int) -> None:
        """The order of ``entry`` opened ``activation_id``: its actual ``price`` counts."""
        await self._quietly(
            "counting an order's price", self.store.spend_bind(entry, activation_id, price)
        )

    async def spend_release(self, name: str) -> bool:
        """The money of ``name`` (an entry or an activation id) was released (False: the
        store missed it)."""
        spending = self._spending
        if not spending.on or name in spending.released:
            return True
        if len(spending.released) > 10_000:
            spending.released.clear()
        spending.released.add(name)
        return await self._quietly("releasing an order's price", self.store.spend_release(name))

    async def spent(self, period: float) -> int:
        """The cents reserved or billed on the key within the last ``period`` seconds."""
        return await self.store.spend_counted(period)

    # -- the success rate ---------------------------------------------------------------

    async def record_order(self, activation_id: str) -> None:
        """An order placed through the SDK opened ``activation_id``."""
        await self._quietly("counting an order", self.store.record_order(activation_id))

    async def guard_success_rate(
        self,
        mode: GuardMode,
        *,
        floor: float,
        error: Callable[[SuccessRateCheck], BaseException],
    ) -> SuccessRateCheck | None:
        """Act on the projected success rate before an order (see ``_success``)."""
        if mode == "off":
            return None
        orders, successes = await self.store.success_counts()
        return apply_guard(check_counts(orders, successes, floor, 10), mode, error)

    # -- blocks -------------------------------------------------------------------------

    async def block_endpoint(self, name: str, reset_at: float | datetime) -> None:
        """A 429 on ``name``: close its window until ``reset_at`` (Unix seconds or aware
        datetime, from ``x-ratelimit-reset``). No-op for an unlimited endpoint."""
        limiter = self._limiters.get(name)
        if limiter is None:
            return
        seconds = unix(reset_at) - self.clock.time()
        await self._quietly("sharing a 429", self.store.window_block(name, limiter.limit, seconds))

    async def block_account(
        self,
        error: ErrorSource,
        *,
        until: float | datetime | None = None,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Make every queued and future acquire on this key (slots, and the endpoints
        named in ``endpoints``, or all of them if None) raise ``error`` until ``until``
        (Unix seconds or aware datetime; None: until :meth:`unblock_account`) - for every
        client of the store, which keeps the block (``unblock_account()`` by any of them
        lifts it)."""
        blocked = None if endpoints is None else frozenset(endpoints)
        for name, limiter in self._limiters.items():
            if blocked is None or name in blocked:
                limiter.interrupt(error)
        self._slots.interrupt(error)
        self._seen.error = error
        self._seen.until = math.inf if until is None else unix(until)
        self._seen.endpoints = blocked
        stamp = None if until is None else unix(until)
        await self._quietly(
            "sharing the account block", self.store.account_block(str(make_error(error)), stamp)
        )

    async def unblock_account(self) -> None:
        """Lift an account-wide block (for every client of the store)."""
        self._unblock_here()
        await self.store.account_unblock()

    async def check_account(self) -> None:
        """Raise the account block's error if the store says the key is blocked."""
        await self._check_block()

    async def _check_block(self) -> None:
        blocked = await self.store.account_read()
        if blocked is None:
            self._unblock_here()  # lifted by another client of the store
            return
        error = self._seen.error
        if error is not None and self.account_blocked:
            raise make_error(error)
        raise blocked_error(*blocked)

    @property
    def account_blocked(self) -> bool:
        """Whether this process saw the account blocked (and the block still runs)."""
        if self._seen.error is not None and self.clock.time() >= self._seen.until:
            self._unblock_here()
        return self._seen.error is not None

    # -- reconciliation -----------------------------------------------------------------

    async def claim(self, activation_id: str) -> bool:
        """Claim ``activation_id`` as handed out to a caller of this key: False when
        another client of the store claimed it first. The number is open by then: a
        store failure only logs a WARNING (and claims)."""
        try:
            (claimed,) = await self.store.claim([activation_id])
        except RateLimitBackendError as exc:
            logger.warning("sharing a handed-out id on key %s: %s", self.key, exc)
            return True
        return claimed

    async def known_elsewhere(self, activation_ids: Iterable[str]) -> set[str]:
        """The ids among these that some client of the store handed out."""
        return await self.store.known(list(activation_ids))

    async def flight_start(
        self, service_id: str, country_id: str, max_price: int | None, slot: Slot | None = None
    ) -> str | None:
        """An order holding ``slot`` is about to leave: the store sees it in flight until
        :meth:`flight_end`, so that no other owner reconciling an order of its own takes
        this order's activation, and a recovery after this process died knows its slot.
        Raises :class:`RateLimitBackendError` (nothing sent)."""
        price = "" if max_price is None else str(max_price)
        member = None if slot is None or slot.released else slot.member
        return await self.store.flight_start(f"{service_id}|{country_id}|{price}", member)

    async def flight_end(self, flight: str | None) -> None:
        """The order of ``flight_start`` landed: answered (and its id claimed) or failed."""
        if flight is not None:
            await self._quietly("ending an order's flight", self.store.flight_end(flight))

    async def order_landed(
        self,
        slot: Slot | None,
        flight: str | None,
        activation_id: str,
        record: str,
        expire_at: float,
    ) -> bool:
        """An order's answer opened ``activation_id`` (``record``: its state as the API's
        JSON), told to the store in one step (``KeyStore.order_landed``): ``slot`` bound
        to it, the id claimed, the number journaled and counted, ``flight`` ended. False:
        another client of the store had claimed the id first. The number is open by then:
        a store failure only logs a WARNING (each part is tried on its own, a slot's bind
        kept for later where the store can; the claim counts as won)."""
        member = None if slot is None else slot.bound_to(activation_id, expire_at)
        try:
            claimed = await self.store.order_landed(
                flight, member, activation_id, record, expire_at
            )
        except RateLimitBackendError as exc:
            logger.warning("noting an order's number on key %s: %s", self.key, exc)
            claimed = True
            if member is not None:
                bind = self.store.slot_bind(member, activation_id, expire_at)
                await self._quietly("binding a slot", bind)
            await self.journal_opened(activation_id, record, expire_at)
            await self.record_order(activation_id)
            await self.flight_end(flight)
        if member is not None:
            self._slots.wake_head()
        return claimed

    async def flight_placed(self, flight: Flight, activation_id: str, expire_at: float) -> None:
        """A recovery took over the number a lapsed owner's ``flight`` placed: the slot
        the order held is the number's from now on (its end frees it), and the flight
        ends."""
        if flight.slot is not None:
            bind = self.store.slot_bind(flight.slot, activation_id, expire_at)
            await self._quietly("binding an orphaned order's slot", bind)
            self._slots.wake_head()
        await self.flight_end(flight.name)

    async def flight_placed_nothing(self, flight: Flight) -> None:
        """A recovery found that a lapsed owner's ``flight`` placed nothing (its window
        passed with no number of its own): its slot is free at once, and the flight ends."""
        if flight.slot is not None:
            release = self.store.slot_release(flight.slot)
            await self._quietly("freeing an orphaned order's slot", release)
            self._slots.wake_head()
        await self.flight_end(flight.name)

    async def flights_elsewhere(self) -> list[tuple[str, str, int | None]]:
        """(service, country, max_price) of each order other owners have in flight."""
        return _offers(await self.store.flights_elsewhere())

    async def flights_orphaned(self) -> list[tuple[str, str, int | None]]:
        """(service, country, max_price) of each order whose owner died in flight."""
        return _offers(await self.store.flights_orphaned())

    async def flights(self) -> list[Flight]:
        """Every order of the key in flight, those of lapsed owners included (``offer_of``
        reads their offers). Raises :class:`RateLimitBackendError` when the store fails."""
        return await self.store.flights_list()

    # -- dashboards ---------------------------------------------------------------------

    async def state(self) -> KeyLimitsState:
        """A snapshot of every limiter, the slots, the success rate and the block, as the
        store sees them, with this process's waiters."""
        limits = {name: limiter.limit for name, limiter in self._limiters.items()}
        seen = await self.store.snapshot(limits, self.slot_capacity)
        limiters = {
            name: attrs.evolve(window, waiters=window.waiters + self._limiters[name].gate.waiters)
            for name, window in seen.windows.items()
        }
        slots = attrs.evolve(seen.slots, waiters=seen.slots.waiters + self._slots.waiters)
        blocked_for = seen.account_blocked_for
        if self.account_blocked:
            blocked_for = max(blocked_for, self._seen.until - self.clock.time())
        orders, successes = seen.orders, seen.successes
        return KeyLimitsState(
            key=self.key,
            base_url=self.base_url,
            limiters=limiters,
            slots=slots,
            success_rate=SuccessRateState(
                orders=orders, successes=successes, rate=successes / orders if orders else None
            ),
            account_blocked_for=max(0.0, blocked_for),
        )

    # -- the journal of open numbers ----------------------------------------------------

    async def journal_opened(self, activation_id: str, record: str, expire_at: float) -> None:
        """Journal a number an order of this process opened (``record``: its state as the
        API's JSON). The number is open by then: a store failure only logs a WARNING."""
        await self._quietly(
            "journaling a number", self.store.journal_put(activation_id, record, expire_at)
        )

    async def journal_seen(
        self, records: Mapping[str, tuple[str, float]], ended: Sequence[str]
    ) -> bool:
        """States seen of numbers that may be journaled: ``records`` of active ones
        (``record``, ``expire_at``), the ids of ``ended`` ones (out of the journal).
        False: the store missed some of it."""
        stored = True
        if records:
            stored = await self._quietly("journaling a state", self.store.journal_update(records))
        if ended:
            stored &= await self._quietly(
                "closing a journaled number", self.store.journal_remove(ended)
            )
        return stored

    async def journal(self) -> list[JournalEntry]:
        """The key's journal. Raises :class:`RateLimitBackendError` when the store fails."""
        return await self.store.journal_list()

    async def journal_take(self, activation_ids: Sequence[str]) -> list[bool]:
        """Take over journaled numbers of lapsed owners (True: now this process's)."""
        return await self.store.journal_take(activation_ids)

    # -- internals ----------------------------------------------------------------------

    def _unblock_here(self) -> None:
        self._seen.error = None
        self._seen.until = math.inf
        self._seen.endpoints = None

    def _raise_if_blocked(self) -> None:
        error = self._seen.error
        if error is not None and self.account_blocked:
            raise make_error(error)

    async def _quietly(self, what: str, operation: Awaitable[object]) -> bool:
        """Run a write whose request is done: a store failure only logs a WARNING (what
        the store missed errs on the safe side). False: it failed."""
        try:
            await operation
        except RateLimitBackendError as exc:
            logger.warning("%s on key %s: %s", what, self.key, exc)
            return False
        return True


# -- the process-wide registry ---------------------------------------------------------


# Every SystemClock tells the same time, so clients on the real clock share by key and
# base URL whatever clock instance they hold; those entries live as long as the process
# (a short-lived client must not start from a fresh budget). Other clocks (virtual, in
# tests) each get their own entries, dropped with the last client holding them.
def offer_of(offer: str) -> tuple[str, str, int | None]:
    """(service, country, max_price) of the ``service|country|price`` a flight names."""
    service_id, _, rest = offer.partition("|")
    country_id, _, price = rest.partition("|")
    return service_id, country_id, int(price) if price else None


def _offers(flights: Iterable[str]) -> list[tuple[str, str, int | None]]:
    return [offer_of(offer) for offer in flights]


_REAL_TIME: dict[tuple[str, str, RateLimitBackend], KeyLimits] = {}
_OTHER_CLOCKS: weakref.WeakValueDictionary[tuple[str, str, int, RateLimitBackend], KeyLimits] = (
    weakref.WeakValueDictionary()
)
_REGISTRY_LOCK = threading.Lock()  # clients on several loop threads may look up at once

_FINGERPRINT_LENGTH = 12


def key_fingerprint(api_key: str) -> str:
    """A short, non-reversible name for an API key (safe in reprs and logs)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:_FINGERPRINT_LENGTH]


def get_key_limits(
    api_key: str,
    base_url: str,
    rate_limits: Mapping[str, RateLimit | None] | None,
    clock: Clock,
    *,
    backend: RateLimitBackend | None = None,
    max_active_activations: int = 20,
) -> KeyLimits:
    """The :class:`KeyLimits` of ``api_key`` at ``base_url`` on ``clock``.

    Every call with the same key, base URL (trailing slash ignored), clock (any
    :class:`SystemClock` counts as one) and an equal backend returns the same object, so
    a second client does not double the budget. The first caller's ``rate_limits`` and
    ``max_active_activations`` win; a later caller's mapping only adds endpoints not
    known yet. ``rate_limits=None``: a view of those limits under which every endpoint
    is unlimited (see :meth:`KeyLimits.without_windows`).
    """
    if rate_limits is None:
        shared = get_key_limits(
            api_key,
            base_url,
            {},
            clock,
            backend=backend,
            max_active_activations=max_active_activations,
        )
        return shared.without_windows()
    backend = DEFAULT_BACKEND if backend is None else backend
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    base_url = base_url.rstrip("/")
    with _REGISTRY_LOCK:
        limits: KeyLimits | None
        if isinstance(clock, SystemClock):
            real_key = (digest, base_url, backend)
            limits = _REAL_TIME.get(real_key)
            if limits is None:
                limits = _REAL_TIME[real_key] = _new(
                    digest, base_url, rate_limits, clock, backend, max_active_activations
                )
                return limits
        else:
            # A live entry holds its clock, so the clock's id cannot have been reused.
            other_key = (digest, base_url, id(clock), backend)
            limits = _OTHER_CLOCKS.get(other_key)
            if limits is None:
                limits = _new(digest, base_url, rate_limits, clock, backend, max_active_activations)
                _OTHER_CLOCKS[other_key] = limits
                return limits
    limits.add_limits(rate_limits)
    if limits.slot_capacity != max_active_activations:
        logger.warning(
            "max_active_activations on key %s stays %d (set by the first client on this "
            "key), not %d",
            limits.key,
            limits.slot_capacity,
            max_active_activations,
        )
    return limits


def _new(
    digest: str,
    base_url: str,
    rate_limits: Mapping[str, RateLimit | None],
    clock: Clock,
    backend: RateLimitBackend,
    max_active_activations: int,
) -> KeyLimits:
    return KeyLimits(
        key=digest[:_FINGERPRINT_LENGTH],
        base_url=base_url,
        rate_limits=rate_limits,
        clock=clock,
        backend=backend,
        max_active_activations=max_active_activations,
    )
