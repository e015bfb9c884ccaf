"""Client-side rate limiting: the documented limits, shared per API key.

The pieces, each in its own module:

- :class:`~platfone_async._ratelimit._window.SlidingWindowLimiter` - one endpoint's
  bucket, whose tokens come back one period after the response;
- :class:`~platfone_async._ratelimit._slots.ActivationSlots` - the 20-active limit;
- :class:`~platfone_async._ratelimit._success.SuccessRateTracker` - the 24 h success rate;
- ``_wait`` - the FIFO wait queue and cancellable waiter they share.

This module holds the table of limits, the :class:`RateLimitBackend` seam (where the
buckets live: in memory, or in Redis with ``_redis.RedisBackend``) and :class:`KeyLimits`,
everything one API key owns, shared by every client in the process through
:func:`get_key_limits` - and by every process of a fleet when the backend is Redis
(its ``fleet``: slots, blocks, success counts and handed-out ids in Redis).

About 520 lines: :class:`KeyLimits` is the one door the pipeline and the order flow go
through for every per-key guarantee, whichever backend keeps it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from .._clock import Clock, SystemClock
from .._errors import RateLimitBackendError
from ._slots import ActivationSlots, SlotToken
from ._success import (
    GuardMode,
    SuccessRateTracker,
    apply_guard,
    check_counts,
)
from ._wait import ErrorSource, logger, make_error
from ._window import SlidingWindowLimiter

if TYPE_CHECKING:
    from ._redis import RedisFleet, RedisSlotToken
    from ._state import (
        KeyLimitsState,
        LimiterState,
        SlotsState,
        SuccessRateCheck,
        SuccessRateState,
    )

__all__ = [
    "DOCUMENTED_RATE_LIMITS",
    "ActivationSlots",
    "ErrorSource",
    "GuardMode",
    "InMemoryBackend",
    "KeyLimits",
    "KeyLimitsState",
    "Limiter",
    "LimiterState",
    "RateLimit",
    "RateLimitBackend",
    "SlidingWindowLimiter",
    "SlotToken",
    "SlotsState",
    "SuccessRateCheck",
    "SuccessRateState",
    "SuccessRateTracker",
    "get_key_limits",
    "key_fingerprint",
]

_STATES = frozenset(
    {"KeyLimitsState", "LimiterState", "SlotsState", "SuccessRateCheck", "SuccessRateState"}
)


def __getattr__(name: str) -> object:
    # The snapshots live in ._state, loaded on first use (see there).
    if name in _STATES:
        from . import _state

        return getattr(_state, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _float(value: float) -> float:
    # Not `converter=float`: attrs reads a converter's signature, and a builtin's is parsed
    # from its text by `tokenize`, whose first use compiles a large regex (~2 ms at import).
    return float(value)


@attrs.frozen
class RateLimit:
    """At most ``calls`` requests in any rolling window of ``period`` seconds."""

    calls: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    period: float = attrs.field(converter=_float, validator=attrs.validators.gt(0.0))


#: The per-endpoint limits of the reference's "Rate limits" table, by method name.
DOCUMENTED_RATE_LIMITS: Mapping[str, RateLimit | None] = {
    "get_balance": RateLimit(300, 60),
    "create_activation": RateLimit(300, 60),
    "retry_activation": RateLimit(50, 60),
    "cancel_activation": RateLimit(50, 60),
    "get_activation_history": RateLimit(6, 60),
    "get_activation": RateLimit(300, 60),
    "get_countries": RateLimit(15, 60),
    "get_services": RateLimit(15, 60),
    "get_prices_by_country": RateLimit(6, 60),
    "get_prices_by_service": RateLimit(6, 60),
    "get_price": RateLimit(60, 60),
}


# -- the backend seam ----------------------------------------------------------------


@runtime_checkable
class Limiter(Protocol):
    """One endpoint's bucket, wherever it lives."""

    def acquire(self) -> AbstractAsyncContextManager[None]:
        """Hold a token for one request; leaving stamps its return (see the module doc)."""
        ...

    def block_until(self, deadline: float) -> None:
        """Close the bucket until ``deadline`` on ``clock.monotonic()``."""
        ...

    def interrupt(self, error: ErrorSource) -> None:
        """Make every caller queued right now raise ``error``."""
        ...

    def state(self) -> LimiterState:
        """A snapshot for dashboards."""
        ...


@runtime_checkable
class RateLimitBackend(Protocol):
    """Where the buckets live.

    ``scope`` names the key and base URL without revealing the key (a digest); a shared
    store (Redis) keys its buckets by ``scope`` and ``name`` so that every process on one
    key draws on the same budget.
    """

    def create_limiter(self, scope: str, name: str, limit: RateLimit, clock: Clock) -> Limiter:
        """A limiter enforcing ``limit`` for endpoint ``name``."""
        ...


class InMemoryBackend:
    """Buckets in this process (the default). ``margin``: see ``SlidingWindowLimiter``.

    Two backends with the same settings are equal, so clients that each build their own
    still share one key's buckets. A plain class of one field: as an attrs class it cost
    ~0.4 ms of ``import platfone_async``.
    """

    __slots__ = ("_margin",)

    def __init__(self, *, margin: float | None = None) -> None:
        self._margin = margin

    @property
    def margin(self) -> float | None:
        return self._margin  # read-only: a backend is a key of the limits registry

    def __repr__(self) -> str:
        return f"InMemoryBackend(margin={self.margin!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not InMemoryBackend:
            return NotImplemented
        return self.margin == other.margin

    def __hash__(self) -> int:
        return hash((InMemoryBackend, self.margin))

    def create_limiter(
        self, scope: str, name: str, limit: RateLimit, clock: Clock
    ) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(
            limit.calls, limit.period, clock=clock, margin=self.margin, name=name
        )


#: The backend used when none is given.
DEFAULT_BACKEND = InMemoryBackend()


# -- one key's limits ------------------------------------------------------------------


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


class KeyLimits:
    """The limits of one API key and base URL: a limiter per endpoint, the activation
    slots, the success-rate tracker and the account-wide block.

    Get it from :func:`get_key_limits`, which hands every client on the same key, base
    URL and clock the same object. ``key`` is a short digest of the API key: the key
    itself is never stored here. With a shared backend (Redis), ``fleet`` keeps the
    slots, the blocks, the success counts and the handed-out ids for every process on
    the key; the in-process ``slots`` and ``success`` then stand in only while the
    backend fails and ``on_backend_error="local"`` allows it.
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
        self.key = key
        self.base_url = base_url
        self.clock = clock
        self.backend = backend
        self._scope = f"{key}@{base_url}"
        self._limits: dict[str, RateLimit | None] = {}
        self._limiters: dict[str, Limiter] = {}
        self.slots = ActivationSlots(max_active_activations, clock=clock)
        self.success = SuccessRateTracker(clock=clock)
        create_fleet = getattr(backend, "create_fleet", None)
        self.fleet: RedisFleet | None = (
            None
            if create_fleet is None
            else create_fleet(self._scope, max_active_activations, clock)
        )
        self._block: ErrorSource | None = None
        self._blocked_endpoints: frozenset[str] | None = None
        self._block_until = math.inf
        self.add_limits(rate_limits)

    def __repr__(self) -> str:
        return f"<KeyLimits key={self.key} base_url={self.base_url!r}>"

    @property
    def limiters(self) -> Mapping[str, Limiter]:
        """The limiter of every limited endpoint, by method name."""
        return self._limiters

    def add_limits(self, rate_limits: Mapping[str, RateLimit | None]) -> None:
        """Adopt the limits of endpoints not known yet; a known endpoint keeps its first
        limit (a WARNING says when a later mapping disagrees)."""
        for name, limit in rate_limits.items():
            if name not in self._limits:
                self._limits[name] = limit
                if limit is not None:
                    self._limiters[name] = self.backend.create_limiter(
                        self._scope, name, limit, self.clock
                    )
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
        if self._block is not None and (
            self._blocked_endpoints is None or name in self._blocked_endpoints
        ):
            self._raise_if_blocked()
        limiter = self._limiters.get(name)
        return _UNLIMITED if limiter is None else limiter.acquire()

    # -- the activation slots -----------------------------------------------------------

    async def acquire_slot(self, timeout: float | None = None) -> SlotToken | RedisSlotToken:
        """A slot under the active-activations limit (see ``ActivationSlots.acquire``)."""
        if self._block is not None:
            self._raise_if_blocked()
        if self.fleet is not None:
            try:
                return await self.fleet.acquire_slot(timeout)
            except RateLimitBackendError as exc:
                if not self._fall_back("activation slots", exc):
                    raise
        return await self.slots.acquire(timeout)

    @property
    def slot_capacity(self) -> int:
        return self.slots.capacity

    async def bind_slot(
        self,
        token: SlotToken | RedisSlotToken,
        activation_id: str,
        expire_at: float | datetime | None,
    ) -> None:
        """Tie ``token`` to the activation its order opened."""
        if isinstance(token, SlotToken):
            token.bind(activation_id, expire_at)
            return
        assert self.fleet is not None
        expire = None if expire_at is None else _unix(expire_at)
        await self._shared(
            "binding a slot", self.fleet.bind(token, activation_id, expire), quiet=True
        )

    async def release_slot(self, token: SlotToken | RedisSlotToken) -> None:
        """Give ``token`` back: its order placed nothing (idempotent)."""
        if isinstance(token, SlotToken):
            token.release()
            return
        assert self.fleet is not None
        await self._shared("releasing a slot", self.fleet.release(token), quiet=True)

    async def server_full(self, token: SlotToken | RedisSlotToken | None) -> None:
        """The server refused an order with TooManyActivations (``token``: its slot)."""
        if token is None or isinstance(token, SlotToken):
            self.slots.server_full(token)
            if token is not None or self.fleet is None:
                return
        assert self.fleet is not None
        await self._shared("learning a full account", self.fleet.server_full(token), quiet=True)

    async def observe(
        self,
        activation_id: str,
        *,
        ended: bool,
        expire_at: float | datetime | None = None,
        sms: bool = False,
    ) -> None:
        """An activation's state was seen: free its slot if it ended, move its expiry,
        count its first SMS. Never raises for the backend: the call it follows is done."""
        self.slots.observe(activation_id, ended=ended, expire_at=expire_at)
        if sms:
            self.success.record_sms(activation_id)
        if self.fleet is not None:
            expire = None if expire_at is None else _unix(expire_at)
            await self._shared(
                "noting an activation's state",
                self.fleet.observe(activation_id, ended=ended, expire_at=expire),
                quiet=True,
            )
            if sms:
                await self._shared(
                    "counting an SMS", self.fleet.record_sms(activation_id), quiet=True
                )

    # -- the success rate ---------------------------------------------------------------

    async def record_order(self, activation_id: str) -> None:
        """An order placed through the SDK opened ``activation_id``."""
        self.success.record_order(activation_id)
        if self.fleet is not None:
            await self._shared(
                "counting an order", self.fleet.record_order(activation_id), quiet=True
            )

    async def guard_success_rate(
        self,
        mode: GuardMode,
        *,
        floor: float,
        error: Callable[[SuccessRateCheck], BaseException],
    ) -> SuccessRateCheck | None:
        """``SuccessRateTracker.guard`` on this key's counts (the fleet's, on Redis)."""
        if mode == "off" or self.fleet is None:
            return self.success.guard(mode, floor=floor, error=error)
        try:
            orders, successes = await self.fleet.success_counts()
        except RateLimitBackendError as exc:
            if not self._fall_back("the success rate", exc):
                raise
            return self.success.guard(mode, floor=floor, error=error)
        return apply_guard(check_counts(orders, successes, floor, 10), mode, error)

    # -- blocks -------------------------------------------------------------------------

    async def block_endpoint(self, name: str, reset_at: float | datetime) -> None:
        """A 429 on ``name``: close its bucket until ``reset_at`` (Unix seconds or aware
        datetime, from ``x-ratelimit-reset``). No-op for an unlimited endpoint."""
        limiter = self._limiters.get(name)
        if limiter is None:
            return
        deadline = self._monotonic_at(reset_at)
        limiter.block_until(deadline)
        share = getattr(limiter, "share_block", None)
        if share is not None:
            seconds = deadline - self.clock.monotonic()
            await self._shared("sharing a 429", share(seconds), quiet=True)

    async def block_account(
        self,
        error: ErrorSource,
        *,
        until: float | datetime | None = None,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Make every queued and future acquire on this key (slots, and the endpoints
        named in ``endpoints``, or all of them if None) raise ``error`` until ``until``
        (Unix seconds or aware datetime; None: until :meth:`unblock_account`) - in every
        process of the fleet on a shared backend, which then keeps the block (so that
        ``unblock_account()`` anywhere lifts it everywhere)."""
        blocked = None if endpoints is None else frozenset(endpoints)
        for name, limiter in self._limiters.items():
            if blocked is None or name in blocked:
                limiter.interrupt(error)
        self.slots.interrupt(error)
        if self.fleet is not None:
            self.fleet.interrupt(error)
            stamp = None if until is None else _unix(until)
            try:
                await self.fleet.block_account(str(make_error(error)), stamp)
                return
            except RateLimitBackendError as exc:
                logger.warning("sharing the account block on key %s: %s", self.key, exc)
        self._block = error
        self._block_until = math.inf if until is None else _unix(until)
        self._blocked_endpoints = blocked

    async def unblock_account(self) -> None:
        """Lift an account-wide block (for the whole fleet on a shared backend)."""
        self._unblock_here()
        if self.fleet is not None:
            await self._shared("lifting the account block", self.fleet.unblock_account())

    async def check_account(self) -> None:
        """Raise the account block's error if this key, or any process of its fleet,
        is blocked (before an order)."""
        if self._block is not None:
            self._raise_if_blocked()
        if self.fleet is None:
            return
        from ._redis import blocked_error

        try:
            blocked = await self.fleet.account_block()
        except RateLimitBackendError as exc:
            if not self._fall_back("the account block", exc):
                raise
            return
        if blocked is not None:
            raise blocked_error(*blocked)

    @property
    def account_blocked(self) -> bool:
        if self._block is not None and self.clock.time() >= self._block_until:
            self._unblock_here()
        return self._block is not None

    # -- reconciliation -----------------------------------------------------------------

    async def claim(self, activation_id: str) -> bool:
        """Claim ``activation_id`` as handed out to a caller of this key: False when
        another process of the fleet claimed it first (always True in memory). The
        number is open by then: a backend failure only logs a WARNING (and claims)."""
        if self.fleet is None:
            return True
        try:
            (claimed,) = await self.fleet.claim([activation_id])
        except RateLimitBackendError as exc:
            logger.warning("sharing a handed-out id on key %s: %s", self.key, exc)
            return True
        return claimed

    async def known_elsewhere(self, activation_ids: Iterable[str]) -> set[str]:
        """The ids some process of the fleet handed out (empty in memory)."""
        if self.fleet is None:
            return set()
        try:
            return await self.fleet.known(list(activation_ids))
        except RateLimitBackendError as exc:
            if not self._fall_back("reading handed-out ids", exc):
                raise
            return set()

    async def flight_start(
        self, service_id: str, country_id: str, max_price: int | None
    ) -> str | None:
        """An order is about to leave: on a shared backend, the fleet sees it in flight
        until :meth:`flight_end`, so that no other process reconciling an order of its
        own takes this order's activation for its own (None in memory: the order book
        knows). Raises :class:`RateLimitBackendError` (nothing is sent) unless the
        backend falls back to local limits."""
        if self.fleet is None:
            return None
        price = "" if max_price is None else str(max_price)
        try:
            return await self.fleet.flight_start(f"{service_id}|{country_id}|{price}")
        except RateLimitBackendError as exc:
            if not self._fall_back("sharing an order in flight", exc):
                raise
            return None

    async def flight_end(self, flight: str | None) -> None:
        """The order of ``flight_start`` landed: answered (and its id claimed) or failed."""
        if flight is not None and self.fleet is not None:
            await self._shared(
                "ending an order's flight", self.fleet.flight_end(flight), quiet=True
            )

    async def flights_elsewhere(self) -> list[tuple[str, str, int | None]]:
        """(service, country, max_price) of each order other processes of the fleet
        have in flight (none in memory)."""
        if self.fleet is None:
            return []
        try:
            offers = await self.fleet.flights_elsewhere()
        except RateLimitBackendError as exc:
            if not self._fall_back("reading the fleet's orders in flight", exc):
                raise
            return []
        flights = []
        for offer in offers:
            service_id, _, rest = offer.partition("|")
            country_id, _, price = rest.partition("|")
            flights.append((service_id, country_id, int(price) if price else None))
        return flights

    # -- dashboards ---------------------------------------------------------------------

    async def state(self) -> KeyLimitsState:
        """A snapshot of every limiter, the slots, the success rate and the block - the
        fleet's, on a shared backend."""
        from . import _state

        blocked_for = 0.0
        if self.account_blocked:
            blocked_for = self._block_until - self.clock.time()
        limiters = {name: limiter.state() for name, limiter in self._limiters.items()}
        slots = self.slots.state()
        success = self.success.state()
        if self.fleet is not None:
            from ._redis import RedisLimiter

            shared = [x for x in self._limiters.values() if isinstance(x, RedisLimiter)]
            slots, windows, fleet_blocked = await self.fleet.state(shared, slots)
            limiters.update(windows)
            orders, successes = await self.fleet.success_counts()
            success = _state.SuccessRateState(
                orders=orders, successes=successes, rate=successes / orders if orders else None
            )
            blocked_for = max(blocked_for, fleet_blocked)
        return _state.KeyLimitsState(
            key=self.key,
            base_url=self.base_url,
            limiters=limiters,
            slots=slots,
            success_rate=success,
            account_blocked_for=blocked_for,
        )

    # -- internals ----------------------------------------------------------------------

    def _unblock_here(self) -> None:
        self._block = None
        self._block_until = math.inf

    def _raise_if_blocked(self) -> None:
        if self._block is not None and self.account_blocked:
            raise make_error(self._block)

    def _monotonic_at(self, moment: float | datetime) -> float:
        return self.clock.monotonic() + (_unix(moment) - self.clock.time())

    def _fall_back(self, what: str, error: RateLimitBackendError) -> bool:
        fall_back = getattr(self.backend, "fall_back", None)
        return bool(fall_back is not None and fall_back(what, error))

    async def _shared(
        self, what: str, operation: Awaitable[object], *, quiet: bool = False
    ) -> None:
        """Run a write to the shared backend. ``quiet``: a failure only logs a WARNING
        (the request it follows is done; what Redis missed errs on the safe side)."""
        try:
            await operation
        except RateLimitBackendError as exc:
            if quiet or self._fall_back(what, exc):
                logger.warning("%s on key %s: %s", what, self.key, exc)
                return
            raise


def _unix(moment: float | datetime) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


# -- the process-wide registry ---------------------------------------------------------

# Every SystemClock tells the same time, so clients on the real clock share by key and
# base URL whatever clock instance they hold; those entries live as long as the process
# (a short-lived client must not start from a fresh budget). Other clocks (virtual, in
# tests) each get their own entries, dropped with the last client holding them.
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
    rate_limits: Mapping[str, RateLimit | None],
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
    known yet.
    """
    backend = DEFAULT_BACKEND if backend is None else backend
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    with _REGISTRY_LOCK:
        return _lookup(
            digest, base_url.rstrip("/"), rate_limits, clock, backend, max_active_activations
        )


def _lookup(
    digest: str,
    base_url: str,
    rate_limits: Mapping[str, RateLimit | None],
    clock: Clock,
    backend: RateLimitBackend,
    max_active_activations: int,
) -> KeyLimits:
    limits: KeyLimits | None
    if isinstance(clock, SystemClock):
        real_key = (digest, base_url, backend)
        limits = _REAL_TIME.get(real_key)
        if limits is None:
            limits = _REAL_TIME[real_key] = _new_key_limits(
                digest, base_url, rate_limits, clock, backend, max_active_activations
            )
            return limits
    else:
        # A live entry holds its clock, so the clock's id cannot have been reused.
        other_key = (digest, base_url, id(clock), backend)
        limits = _OTHER_CLOCKS.get(other_key)
        if limits is None:
            limits = _new_key_limits(
                digest, base_url, rate_limits, clock, backend, max_active_activations
            )
            _OTHER_CLOCKS[other_key] = limits
            return limits
    limits.add_limits(rate_limits)
    if limits.slots.capacity != max_active_activations:
        logger.warning(
            "max_active_activations on key %s stays %d (set by the first client on this "
            "key), not %d",
            limits.key,
            limits.slots.capacity,
            max_active_activations,
        )
    return limits


def _new_key_limits(
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
