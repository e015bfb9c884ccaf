"""Client-side rate limiting: the documented limits, shared per API key.

The pieces, each in its own module:

- :class:`~platfone_async._ratelimit._window.SlidingWindowLimiter` - one endpoint's
  bucket, whose tokens come back one period after the response;
- :class:`~platfone_async._ratelimit._slots.ActivationSlots` - the 20-active limit;
- :class:`~platfone_async._ratelimit._success.SuccessRateTracker` - the 24 h success rate;
- ``_wait`` - the FIFO wait queue and cancellable waiter they share.

This module holds the table of limits, the :class:`RateLimitBackend` seam (where the
buckets live: in memory now, Redis later) and :class:`KeyLimits`, everything one API key
owns, shared by every client in the process through :func:`get_key_limits`.
"""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Protocol, runtime_checkable

import attrs

from .._clock import Clock, SystemClock
from ._slots import ActivationSlots, SlotsState, SlotToken
from ._success import GuardMode, SuccessRateCheck, SuccessRateState, SuccessRateTracker
from ._wait import ErrorSource, logger, make_error
from ._window import LimiterState, SlidingWindowLimiter

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


@attrs.frozen
class RateLimit:
    """At most ``calls`` requests in any rolling window of ``period`` seconds."""

    calls: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    period: float = attrs.field(converter=float, validator=attrs.validators.gt(0.0))


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


@attrs.frozen(kw_only=True)
class InMemoryBackend:
    """Buckets in this process (the default). ``margin``: see ``SlidingWindowLimiter``.

    Two backends with the same settings are equal, so clients that each build their own
    still share one key's buckets.
    """

    margin: float | None = None

    def create_limiter(
        self, scope: str, name: str, limit: RateLimit, clock: Clock
    ) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(
            limit.calls, limit.period, clock=clock, margin=self.margin, name=name
        )


#: The backend used when none is given.
DEFAULT_BACKEND = InMemoryBackend()


# -- one key's limits ------------------------------------------------------------------


@attrs.frozen
class KeyLimitsState:
    """A snapshot of everything one key's limits hold, for dashboards.

    ``account_blocked_for`` is how long an account-wide block still lasts (seconds;
    ``math.inf`` until lifted by hand, 0 when not blocked).
    """

    key: str
    base_url: str
    limiters: Mapping[str, LimiterState]
    slots: SlotsState
    success_rate: SuccessRateState
    account_blocked_for: float


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
    itself is never stored here.
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

    async def acquire_slot(self, timeout: float | None = None) -> SlotToken:
        """A slot under the active-activations limit (see ``ActivationSlots.acquire``)."""
        if self._block is not None:
            self._raise_if_blocked()
        return await self.slots.acquire(timeout)

    def block_endpoint(self, name: str, reset_at: float | datetime) -> None:
        """A 429 on ``name``: close its bucket until ``reset_at`` (Unix seconds or aware
        datetime, from ``x-ratelimit-reset``). No-op for an unlimited endpoint."""
        limiter = self._limiters.get(name)
        if limiter is not None:
            limiter.block_until(self._monotonic_at(reset_at))

    def block_account(
        self,
        error: ErrorSource,
        *,
        until: float | datetime | None = None,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Make every queued and future acquire on this key (slots, and the endpoints
        named in ``endpoints``, or all of them if None) raise ``error`` until ``until``
        (Unix seconds or aware datetime; None: until :meth:`unblock_account`)."""
        self._block = error
        self._block_until = math.inf if until is None else _unix(until)
        self._blocked_endpoints = None if endpoints is None else frozenset(endpoints)
        for name, limiter in self._limiters.items():
            if self._blocked_endpoints is None or name in self._blocked_endpoints:
                limiter.interrupt(error)
        self.slots.interrupt(error)

    def unblock_account(self) -> None:
        """Lift an account-wide block."""
        self._block = None
        self._block_until = math.inf

    @property
    def account_blocked(self) -> bool:
        if self._block is not None and self.clock.time() >= self._block_until:
            self.unblock_account()
        return self._block is not None

    def state(self) -> KeyLimitsState:
        """A snapshot of every limiter, the slots, the success rate and the block."""
        blocked_for = 0.0
        if self.account_blocked:
            blocked_for = self._block_until - self.clock.time()
        return KeyLimitsState(
            key=self.key,
            base_url=self.base_url,
            limiters={name: limiter.state() for name, limiter in self._limiters.items()},
            slots=self.slots.state(),
            success_rate=self.success.state(),
            account_blocked_for=blocked_for,
        )

    def _raise_if_blocked(self) -> None:
        if self._block is not None and self.account_blocked:
            raise make_error(self._block)

    def _monotonic_at(self, moment: float | datetime) -> float:
        return self.clock.monotonic() + (_unix(moment) - self.clock.time())


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
