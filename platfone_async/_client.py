"""``AsyncPlatfone``: one method per endpoint of the Platfone Activation API.

Each method validates its arguments (``_validate``: bad input fails before any request
leaves), hands the call to the pipeline (``_http``) - or, for the writes that need
judgement, to the order flow (``_orders``) - and returns a model. Watching and holding
an activation live in ``_watch`` and ``_session``.

The module is long because of its docstrings, most of it: they are the API reference
that ``help()``, IDEs, the generated sync facade and the documentation site show, so they
stay with the methods they describe.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import inspect
import os
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TextIO, TypeVar

import anyio
import attrs
import httpx

from . import _validate as check
from . import _watch
from ._clock import Clock, SystemClock
from ._errors import InvalidParameterError
from ._http import DEFAULT_MAX_RESPONSE_BYTES, HTTPPipeline
from ._models import Activation, Balance, Page
from ._orders import Orders, SuccessRateGuard
from ._ratelimit import (
    DOCUMENTED_RATE_LIMITS,
    KeyLimitsState,
    RateLimit,
    RateLimitBackend,
    get_key_limits,
)
from ._retry import RetryPolicy, client_policy
from ._session import ActivationSession, open_session
from ._settle import Settled
from ._spend import SpendLimit
from ._validate import Evidence

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._find import CatalogMatch
    from ._models._catalog import Country, CountryPrices, PriceInfo, Service, ServicePrices
    from ._models._reports import Report, ReportReason, ReportResult
    from ._offers import Offer
    from ._recover import OpenActivation
    from .webhooks._push import PushHub

__all__ = ["NOT_GIVEN", "PRODUCTION_URL", "SANDBOX_URL", "AsyncPlatfone", "NotGiven"]

T = TypeVar("T")

PRODUCTION_URL = "https://temp-number-api.com/api/v1"
SANDBOX_URL = "https://temp-number-api.com/test/api/v1"

_SYSTEM_CLOCK = SystemClock()
#: How often ``recover_orphans`` looks at the journal for lapsed owners' numbers.
_ORPHANS_EVERY = 5.0


class NotGiven:
    """The default of an option left as it is (``None`` has a meaning of its own)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_GIVEN"


#: An option not given: keep the client's.
NOT_GIVEN = NotGiven()


_ENV_BACKENDS: dict[str, RateLimitBackend] = {}


def _backend_from_environment() -> RateLimitBackend | None:
    """The backend ``PLATFONE_STATE_URL`` names (``sqlite:///path`` or ``redis://...``;
    ``PLATFONE_REDIS_URL`` is its older alias), one per URL in the process; or None."""
    url = os.environ.get("PLATFONE_STATE_URL") or os.environ.get("PLATFONE_REDIS_URL")
    if not url:
        return None
    backend = _ENV_BACKENDS.get(url)
    if backend is None:
        backend = _ENV_BACKENDS[url] = _backend_for(url)
    return backend


def _backend_for(url: str) -> RateLimitBackend:
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from ._ratelimit._sqlite import SQLiteBackend  # sqlite3 and a thread pool: see __init__

        if not rest:  # sqlite:///var/lib/app.db is the file /var/lib/app.db
            raise ValueError(f"PLATFONE_STATE_URL {url!r} names no file (sqlite:///path)")
        return SQLiteBackend(rest)
    if scheme in ("redis", "rediss", "unix"):
        from ._ratelimit._redis import RedisBackend

        return RedisBackend.from_url(url)
    raise ValueError(
        f"PLATFONE_STATE_URL must start with sqlite:/// or redis://, not {scheme + '://'!r}"
    )


def _activation_id(activation: str | Activation) -> str:
    if isinstance(activation, Activation):
        return activation.activation_id
    return check.activation_id(activation)


class _Shared:
    """What a client shares with its ``with_options`` copies: the push hub of its
    webhook handler (made by the first handler attached to any of them)."""

    __slots__ = ("push_hub",)

    def __init__(self) -> None:
        self.push_hub: PushHub | None = None


class AsyncPlatfone:
    """The async client for the Platfone Activation API.

    Args:
        api_key: Your API key; falls back to the ``PLATFONE_API_KEY`` environment variable.
        sandbox: Use the sandbox environment (its own URL and keys).
        base_url: Another API root (an emulator, a proxy); overrides ``sandbox``.
        timeout: Seconds for each request (an ``httpx.Timeout`` for finer control): each
            phase (connect, send, each read) and, unless ``request_deadline`` says
            otherwise, the request as a whole (an ``httpx.Timeout``: its longest phase).
        max_retries: How often an idempotent call is retried after a connection error,
            a timeout or a 500/502/503/504 (an order only when it provably never left);
            shorthand for ``retry_policy=RetryPolicy(max_retries=...)``.
        retry_policy: Every retry knob in one object (:class:`RetryPolicy`): what is
            retried, backoff, a deadline per call, 429 waits, order reconciliation.
            ``RetryPolicy.none()`` switches retries, waits and reconciliation off (for
            tests). With it, leave ``max_retries`` and ``rate_limit_wait`` out.
        rate_limits: Per-method limits enforced client-side; a method mapped to ``None``
            is unlimited, and ``rate_limits=None`` turns client-side limiting off.
        http_client: An ``httpx.AsyncClient`` to send through (transport, proxies, pool,
            hooks). Requests use absolute URLs, so its own ``base_url`` does not matter.
            ``aclose()`` leaves it open: it is yours.
        proxy: A proxy every request goes through (``"http://user:pass@proxy:3128"``, an
            ``httpx.Proxy``), for the client the SDK makes; with ``http_client``, give it
            to that client instead. ``HTTPS_PROXY`` and friends are honoured by default.
        clock: Where time is read and slept (tests pass a virtual clock).
        max_active_activations: The account's limit of active activations (20 unless
            Platfone raised it for you); orders beyond it wait for a free slot instead of
            drawing a 429. ``None`` turns the client-side count off.
        slot_timeout: How long ``create_activation`` waits for a free slot before raising
            :class:`ActiveActivationsLimitError` (None: as long as it takes).
        success_rate_guard: What to do when the next order would take the 24 h first-SMS
            success rate under ``success_rate_floor`` (after 10 orders): ``"warn"`` logs a
            WARNING, ``"raise"`` raises :class:`SuccessRateGuardError` before ordering,
            ``"off"`` does nothing. Platfone blocks an account for 24 h below 7 %.
        success_rate_floor: The floor the guard watches (default 0.10).
        rate_limit_wait: The longest server-announced wait (a 429's reset, a
            ``Retry-After``; seconds) a call waits out by itself before raising;
            shorthand for ``RetryPolicy(max_server_wait=...)``.
        limits_backend: Where the limits live: in this process (the default),
            :class:`SQLiteBackend` to share them - the windows, the slots, the blocks, the
            success rate and reconciliation - with every process of this host, or
            :class:`RedisBackend` with every process and host on the key.
            Without it, ``PLATFONE_STATE_URL`` (if set) selects one: ``sqlite:///path``
            a :class:`SQLiteBackend` on that file, ``redis://...`` a Redis backend
            (``PLATFONE_REDIS_URL``, its older name, too).
        rng: The source of every random choice the client makes (the jitter of retry
            backoffs and of watch polls); tests pass ``random.Random(seed)`` for a
            reproducible run. None: a generator of its own, seeded by the system.
        max_response_bytes: The most of a successful answer that is read (8 MiB; the
            largest real answers, the price lists, are far smaller). A longer body is not
            read further: :class:`ResponseDecodeError`.
        request_deadline: Real seconds one request may take as a whole - connect, send
            and the entire answer - however slowly the server trickles it; past it,
            :class:`APITimeoutError`. None: from ``timeout``; ``math.inf``: no bound.
        on_late_sms: Called with the :class:`Activation` of every code that arrived after
            its holder stopped waiting - found while an ``activation()`` block settles the
            number or ``recover()`` settles a number a process that died left. A plain
            function, called on the event loop: keep it short. A WARNING names the number
            and the code either way.
        recover_orphans: Take over, in the background, the numbers a process that died
            left in the journal of a shared ``limits_backend``, as soon as its lease
            lapses (~30 s), and settle them as :meth:`recover` does - so a dead worker's
            slots come back in minutes, not at expiry; two clients never take the same
            number. Runs while the client is used as ``async with`` (or the sync
            :class:`Platfone` is open).
        spend_limit: At most so much money reserved or billed within a rolling period
            (:class:`SpendLimit`): an order that would go over it raises
            :class:`SpendLimitError` before it leaves. Counted in the ``limits_backend``,
            so the clients that share it share one budget. None: no limit.

    Use it as ``async with AsyncPlatfone() as client:``, or call ``await client.aclose()``.

    Every call checks its arguments before anything is sent
    (:class:`InvalidParameterError`) and can raise, besides the errors its own
    docstring lists: :class:`AuthenticationError` (the key is refused; a sandbox key
    needs ``sandbox=True``), :class:`PermissionDeniedError` (the account is on hold or
    its e-mail unverified), :class:`RateLimitError` (a 429 whose reset is further away
    than ``rate_limit_wait``), :class:`ServerError` and :class:`APIConnectionError`
    (after the retries), and :class:`ResponseDecodeError` (an answer that does not
    fit, its body kept) - all of them :class:`PlatfoneError`.

    Raises:
        InvalidParameterError: No API key (neither ``api_key`` nor
            ``PLATFONE_API_KEY``), or an option out of range.

    Examples:
        >>> async with AsyncPlatfone() as client:  # api_key= or $PLATFONE_API_KEY
        ...     balance = await client.get_balance()
        >>> client = AsyncPlatfone(sandbox=True, timeout=10, max_retries=5)
    """

    @staticmethod
    def _resolve_api_key(api_key: str | None) -> str:
        """``api_key``, else ``$PLATFONE_API_KEY``; raises when neither gives a usable key.

        The sync ``Platfone`` calls it before it starts its loop, so both clients fail at
        construction alike.
        """
        key = api_key if api_key is not None else os.environ.get("PLATFONE_API_KEY")
        if not key:
            raise InvalidParameterError(
                "api_key", "pass api_key=... or set the PLATFONE_API_KEY environment variable", None
            )
        if not isinstance(key, str) or any(c in key for c in "\r\n"):
            raise InvalidParameterError("api_key", "must be a single-line string", "<hidden>")
        return key

    def __init__(
        self,
        api_key: str | None = None,
        *,
        sandbox: bool = False,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        rate_limits: Mapping[str, RateLimit | None] | None = DOCUMENTED_RATE_LIMITS,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        max_active_activations: int | None = 20,
        slot_timeout: float | None = None,
        success_rate_guard: SuccessRateGuard = "warn",
        success_rate_floor: float = 0.10,
        rate_limit_wait: float = 60.0,
        limits_backend: RateLimitBackend | None = None,
        proxy: str | httpx.Proxy | None = None,
        rng: random.Random | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        request_deadline: float | None = None,
        on_late_sms: Callable[[Activation], object] | None = None,
        recover_orphans: bool = False,
        spend_limit: SpendLimit | None = None,
    ) -> None:
        key = self._resolve_api_key(api_key)
        policy = client_policy(max_retries, rate_limit_wait, retry_policy)
        if proxy is not None and http_client is not None:
            raise InvalidParameterError(
                "proxy", "give it to your http_client (httpx.AsyncClient(proxy=...))", proxy
            )
        if base_url is None:
            base_url = SANDBOX_URL if sandbox else PRODUCTION_URL
        if max_active_activations is not None:
            check.int_in_range(max_active_activations, "max_active_activations", 1)
        if slot_timeout is not None:
            check.non_negative(slot_timeout, "slot_timeout")
        if success_rate_guard not in ("warn", "raise", "off"):
            raise InvalidParameterError(
                "success_rate_guard", "must be 'warn', 'raise' or 'off'", success_rate_guard
            )
        if not 0.0 <= success_rate_floor <= 1.0:
            raise InvalidParameterError(
                "success_rate_floor", "must be between 0 and 1", success_rate_floor
            )
        check.int_in_range(max_response_bytes, "max_response_bytes", 1024)
        if request_deadline is not None:
            check.positive_or_inf(request_deadline, "request_deadline")
        if on_late_sms is not None and (
            not callable(on_late_sms) or inspect.iscoroutinefunction(on_late_sms)
        ):
            raise InvalidParameterError(
                "on_late_sms", "must be a plain function of an Activation", on_late_sms
            )
        if rng is not None and not isinstance(rng, random.Random):
            raise InvalidParameterError("rng", "must be a random.Random", type(rng).__name__)
        if spend_limit is not None and not isinstance(spend_limit, SpendLimit):
            raise InvalidParameterError(
                "spend_limit", "must be a SpendLimit", type(spend_limit).__name__
            )
        clock = clock if clock is not None else _SYSTEM_CLOCK
        self._owned_backend: RateLimitBackend | None = None
        if limits_backend is None:
            limits_backend = self._owned_backend = _backend_from_environment()
        #: Every random choice (backoff and poll jitter) is drawn from it.
        self._rng = rng if rng is not None else random.Random()
        self._http = HTTPPipeline(
            api_key=key,
            base_url=base_url,
            timeout=timeout,
            retry=policy,
            http_client=http_client,
            clock=clock,
            proxy=proxy,
            rng=self._rng,
            max_response_bytes=max_response_bytes,
            request_deadline=request_deadline,
            limits=get_key_limits(
                key,
                base_url,
                rate_limits,
                clock,
                backend=limits_backend,
                max_active_activations=max_active_activations or 20,
            ),
        )
        self._orders = Orders(
            self._http,
            slots_on=max_active_activations is not None,
            slot_timeout=slot_timeout,
            success_rate_guard=success_rate_guard,
            success_rate_floor=success_rate_floor,
            spend_limit=spend_limit,
        )
        self._catalog: dict[str, tuple[str, list[Any]]] = {}
        self._shared = _Shared()
        #: Called with each code that arrived after its holder stopped waiting.
        self._on_late_sms = on_late_sms
        self._recover_orphans = bool(recover_orphans)
        self._background: TaskGroup | None = None  # the orphan watcher's, while entered

    def __repr__(self) -> str:
        return f"<AsyncPlatfone base_url={self.base_url!r}>"

    @property
    def base_url(self) -> str:
        """The API root every request goes to."""
        return self._http.base_url

    @property
    def clock(self) -> Clock:
        """The clock this client reads and sleeps on (the ``clock=`` it was given)."""
        return self._http.clock

    @property
    def retry_policy(self) -> RetryPolicy:
        """The :class:`RetryPolicy` this client follows."""
        return self._http.retry

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> AsyncPlatfone:
        """This client with another timeout or retry policy, for one call or a block.

        A light copy: it shares the connection pool, the limits, the catalog cache and
        the emulator wiring with this client; closing it closes nothing (close this one).

        Args:
            timeout: Seconds for each request (an ``httpx.Timeout``; None: no timeout).
            max_retries: Shorthand for ``retry_policy`` with another ``max_retries``.
            retry_policy: Another :class:`RetryPolicy`.

        Returns:
            The copy; this client is left as it is.

        Raises:
            InvalidParameterError: Both ``max_retries`` and ``retry_policy``, a policy that
                is not a :class:`RetryPolicy`, or a negative number.

        Examples:
            >>> balance = await client.with_options(timeout=5).get_balance()
            >>> patient = client.with_options(max_retries=5)
        """
        if max_retries is not None and retry_policy is not None:
            raise InvalidParameterError(
                "max_retries", "give it inside retry_policy, or give one of the two", max_retries
            )
        policy = self.retry_policy if retry_policy is None else retry_policy
        if not isinstance(policy, RetryPolicy):
            raise InvalidParameterError("retry_policy", "must be a RetryPolicy", retry_policy)
        if max_retries is not None:
            policy = attrs.evolve(
                policy, max_retries=check.int_in_range(max_retries, "max_retries", 0)
            )
        if isinstance(timeout, NotGiven):
            timeout = self._http.timeout
        elif timeout is not None and not isinstance(timeout, httpx.Timeout):
            check.non_negative(timeout, "timeout")
        copy = _copy.copy(self)
        copy._http = self._http.with_options(timeout=timeout, retry=policy)
        copy._orders = self._orders.with_pipeline(copy._http)
        copy._owned_backend = None  # the original closes what it owns
        copy._recover_orphans, copy._background = False, None  # the original's watcher
        return copy

    async def __aenter__(self) -> AsyncPlatfone:
        if self._recover_orphans and self._background is None:
            from ._recover import OrphanWatcher  # recovery: loaded when first used

            group = anyio.create_task_group()
            await group.__aenter__()
            group.start_soon(OrphanWatcher(self, _ORPHANS_EVERY).run)
            self._background = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        group, self._background = self._background, None
        try:
            if group is not None:  # numbers being settled stay journaled, said so
                group.cancel_scope.cancel()
                await group.__aexit__(None, None, None)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client this object created (an injected one stays open).

        Examples:
            >>> client = AsyncPlatfone()
            >>> try:
            ...     print(await client.get_balance())
            ... finally:
            ...     await client.aclose()
        """
        await self._http.aclose()
        if self._owned_backend is not None:  # from PLATFONE_STATE_URL: its connections here
            await self._owned_backend.aclose()

    async def rate_limit_state(self) -> KeyLimitsState:
        """A snapshot of this key's client-side limits, for dashboards.

        Per endpoint: tokens available, in use, cooling down, waiters, how long a server
        429 still closes it; the activation slots (in use, waiting); the 24 h success
        rate; and how long an account block still lasts. Shared by every client in the
        process on the same API key and base URL - and, with a Redis ``limits_backend``,
        the whole fleet's. No request is sent.

        Returns:
            A :class:`KeyLimitsState`: ``limiters`` per endpoint, ``slots``,
            ``success_rate`` and ``account_blocked_for``.

        Raises:
            RateLimitBackendError: The Redis ``limits_backend`` did not answer.

        Examples:
            >>> state = await client.rate_limit_state()
            >>> state.slots.in_use
        """
        return await self._http.limits.state()

    async def unblock_account(self) -> None:
        """Forget an account block this key learned from a ``LowSuccessRateException``.

        After such a 429, every order on the key raises :class:`AccountBlockedError`
        until the unblock time the server gave. Call this once you have unblocked the
        account in the Platfone dashboard, to order again at once (every process of
        the fleet, with a Redis ``limits_backend``). No request is sent.

        Raises:
            RateLimitBackendError: The Redis ``limits_backend`` did not answer.

        Examples:
            >>> await client.unblock_account()
        """
        await self._http.limits.unblock_account()

    async def open_activations(self) -> list[OpenActivation]:
        """The numbers this key's journal holds: opened through the SDK, not settled yet.

        Every number an order opens is journaled in the ``limits_backend``'s store with
        the process holding it, updated from each state a client reads and removed once
        one sees it end. With :class:`SQLiteBackend` or :class:`RedisBackend` the journal
        outlives a process: a number whose holder's lease lapsed (``alive`` False, about
        30 s after its process died) is left for ``recover()`` to settle. In memory (the
        default) it holds this process's numbers only. The number an order of a dead
        process placed without its answer arriving is listed too (lapsed), found in the
        activation history: only then is a request sent.

        Returns:
            One :class:`OpenActivation` per number (``activation``: its latest state;
            ``owner``, ``alive``, ``mine``), soonest ``expire_at`` first.

        Raises:
            RateLimitBackendError: The ``limits_backend`` did not answer.

        Examples:
            >>> lapsed = [o for o in await client.open_activations() if not o.alive]
        """
        from ._recover import open_activations

        return await open_activations(self)

    async def recover(self, *, interval: float = 10.0) -> list[Settled]:
        """Take over and settle the numbers a process that died left open.

        Every number in this key's journal (see :meth:`open_activations`) whose
        holder's lease lapsed is claimed - a live holder's numbers are never touched,
        and two processes recovering at once never take the same number - and settled
        as an ``activation()`` block settles its number: finalized when its SMS came
        and was billed, cancelled once ``cancelable_after`` allows, otherwise left to
        expire; while it waits it keeps watching, so a code that comes meanwhile is
        finalized and delivered (in the result, a WARNING and ``on_late_sms``). It
        never orders. The number an order of a dead process placed without its answer
        arriving is found in the activation history and settled alike, unless it cannot
        be told from another number no process holds (a WARNING names them). A WARNING
        sums up what it did, with how many SMS-less numbers it
        cancelled (they count against the 24 h success rate, as they would have
        anyway). Cancelling it (Ctrl-C) stops at once: what it had not settled stays
        journaled, and it says so.

        Needs a shared ``limits_backend`` (:class:`SQLiteBackend`,
        :class:`RedisBackend`) to find another process's numbers; in memory it finds
        none. A number it cannot settle (a non-transient error) stays journaled, said
        in a WARNING.

        Args:
            interval: Seconds between polls while it waits (10, as the API asks).

        Returns:
            One record per number settled, in the journal's order: ``.activation`` (the
            latest state; ``.sms_code`` holds a code that came) and ``.outcome`` (a
            :class:`SessionOutcome`).

        Raises:
            RateLimitBackendError: The ``limits_backend`` did not answer.

        Examples:
            >>> for settled in await client.recover():
            ...     print(settled.activation.phone, settled.outcome, settled.activation.sms_code)
        """
        _watch.check_interval(interval)
        from ._recover import recover

        return await recover(self, interval=interval)

    # -- activations --------------------------------------------------------------------

    async def create_activation(
        self,
        service_id: str,
        country_id: str,
        *,
        max_price: int | None = None,
        order_id: str | None = None,
        quality_factor: float | None = None,
        wait_for_slot: bool = True,
    ) -> Activation:
        """Order a number for ``service_id`` in ``country_id`` (``POST /activation``).

        The price is reserved from the balance at once and billed when the first SMS
        arrives. One call never places two orders: the order is resent only when it
        provably never reached the server (the connection could not be made, or a 429
        refused it). When it may have reached the server - a timeout, a dropped
        connection, a 5xx, an unreadable answer - it is reconciled through the activation
        history instead: see [Reconciliation](../guides/reliability.md#reconciliation) in
        the reliability guide (``docs/guides/reliability.md``). ``RetryPolicy`` tunes it
        (``reconcile_delays``, ``clock_skew``, ``reconcile_orders``). A request that has
        left is seen through even if the caller is cancelled meanwhile; a call cancelled
        before it left takes nothing.
        :meth:`activation` orders and settles the number for you.

        Args:
            service_id: The service to receive an SMS from (``other`` for unlisted ones).
            country_id: The number's country (``_v`` suffix: virtual numbers).
            max_price: The most you will pay, in USD cents (1-10000); above it the server
                answers :class:`MaxPriceExceededError` with a ``suggested_price``.
            order_id: The continuation token of that error, to continue the same order.
            quality_factor: 0 (cheapest) to 100 (best quality); the server's default is 50.
            wait_for_slot: When all ``max_active_activations`` slots are taken, wait for
                one to free up (FIFO) rather than raise :class:`ActiveActivationsLimitError`.

        Returns:
            The new activation (``sms_status`` ``smsRequested``, ``billing_status``
            ``reserved``): its ``phone``, ``price``, ``expire_at`` and ``cancelable_after``.

        Raises:
            InvalidParameterError: An argument outside its documented range (nothing sent).
            MaxPriceExceededError: The price is above ``max_price``: order again at its
                ``suggested_price`` with its ``order_id`` to continue the same order.
            NotFoundError: ``order_id`` is unknown or stale: order without it.
            BadRequestError: The server knows no such service or country.
            NoNumbersAvailableError: No number for this service and country right now.
            InsufficientBalanceError: The available balance does not cover the price.
            ActiveActivationsLimitError: Every slot is taken and ``wait_for_slot`` is
                False, or ``slot_timeout`` passed first.
            AccountBlockedError: The account is blocked for its low success rate (24 h).
            SuccessRateGuardError: ``success_rate_guard="raise"`` and this order would take
                the success rate under ``success_rate_floor`` (nothing sent).
            SpendLimitError: Its price (``max_price``, else the price list's top, looked
                up with ``get_price``) would take the client's ``spend_limit`` over
                (nothing sent).
            OrderOutcomeUnknownError: The order may have been placed and the history
                cannot tell: look for it there before ordering again.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> activation = await client.create_activation("telegram", "uk", max_price=200)
            >>> print("send the code to +" + activation.phone)
        """
        sid = check.service_id(service_id)
        cid = check.country_id(country_id)
        body: dict[str, Any] = {"service_id": sid, "country_id": cid}
        if max_price is not None:
            body["max_price"] = check.max_price(max_price)
        if order_id is not None:
            body["order_id"] = check.order_id(order_id)
        if quality_factor is not None:
            body["quality_factor"] = check.quality_factor(quality_factor)
        return await self._orders.place(
            body, max_price=max_price, wait_for_slot=wait_for_slot, reader=self
        )

    async def get_activation(self, activation_id: str | Activation) -> Activation:
        """The activation's current state (``GET /activation/{id}``); poll it every 10 s.

        Args:
            activation_id: The activation, or its id.

        Returns:
            The activation now: ``sms_code`` once an SMS arrived (``sms_received``),
            ``is_active`` while it can still get one.

        Raises:
            InvalidParameterError: The id is not a well-formed activation id (nothing sent).
            NotFoundError: No such activation on this key.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> activation = await client.get_activation(activation)  # or its id
            >>> activation.sms_code if activation.sms_received else activation.sms_status
        """
        aid = _activation_id(activation_id)
        reply = await self._http.fetch(
            "get_activation", "GET", f"/activation/{aid}", idempotent=True
        )
        return await self._orders.observe(self._http.decode_reply(reply, Activation))

    async def retry_activation(self, activation_id: str | Activation) -> None:
        """Ask for another SMS to the same number (``PUT /activation/{id}/retry``).

        Allowed while the activation is ``active`` and ``is_retriable``, after an SMS
        arrived; the next SMS overwrites ``sms_code``/``sms_text``. Free of charge.

        Unlike cancel and finalize, a retry is not harmless twice: a second one that
        lands after the next SMS wipes that SMS. So it is never resent blindly. When the
        request may have reached the server and failed (a timeout, a dropped connection,
        a 5xx), the activation is read: a retry that took effect (``retryRequested``, or
        a new code when ``activation_id`` is the :class:`Activation` last seen) counts as
        done; one that surely did not (a complete 5xx answer, the old SMS still shown)
        is sent once more; otherwise the error is raised - the server may still apply
        it, so look at the activation before asking again.

        Args:
            activation_id: The activation (best: the last state seen), or its id.

        Raises:
            InvalidParameterError: The id is not a well-formed activation id (nothing sent).
            ConflictError: The activation cannot be retried now (no SMS yet, not
                ``is_retriable``, or no longer ``active``).
            NotFoundError: No such activation on this key.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`); after an unsure
                failure, the error that left it unsure.

        Examples:
            >>> await client.retry_activation(activation)
            >>> activation = await client.wait_for_sms(activation, timeout=300)  # the next SMS
        """
        before = activation_id if isinstance(activation_id, Activation) else None
        await self._orders.retry(_activation_id(activation_id), before, reader=self)

    async def cancel_activation(self, activation_id: str | Activation) -> None:
        """Cancel an activation that has received no SMS (``PUT /activation/{id}/cancel``).

        Allowed once ``cancelable_after`` has passed (never when it is ``None``); the
        reserved price is released. Retried like a read: a retry that finds it already
        cancelled counts as done.

        Args:
            activation_id: The activation, or its id.

        Raises:
            InvalidParameterError: The id is not a well-formed activation id (nothing sent).
            ConflictError: It cannot be cancelled: an SMS arrived, ``cancelable_after`` has
                not passed (or is ``None``), or it is no longer ``active``.
            NotFoundError: No such activation on this key.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> if activation.cancelable_after and not activation.sms_received:
            ...     await client.cancel_activation(activation)
        """
        await self._orders.settle(
            "cancel_activation", _activation_id(activation_id), "cancel", reader=self
        )

    async def finalize_activation(self, activation_id: str | Activation) -> None:
        """Confirm an activation that got its SMS (``PUT /activation/{id}/finalize``).

        Frees its place among the active activations; no SMS arrives afterwards. Retried
        like a read: a retry that finds it already finalized counts as done.

        Args:
            activation_id: The activation, or its id.

        Raises:
            InvalidParameterError: The id is not a well-formed activation id (nothing sent).
            ConflictError: It cannot be finalized: no SMS was billed yet, or it is no
                longer ``active``.
            NotFoundError: No such activation on this key.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> activation = await client.wait_for_sms(activation, timeout=600)
            >>> await client.finalize_activation(activation)
        """
        await self._orders.settle(
            "finalize_activation", _activation_id(activation_id), "finalize", reader=self
        )

    async def get_activation_history(self, *, page: int = 1, limit: int = 10) -> Page[Activation]:
        """One page of past activations, newest first (``GET /activation/history``).

        Args:
            page: The page number, from 1.
            limit: Items per page, 1-50.

        Returns:
            A :class:`Page` of activations (``items``, ``page``, ``pages``, ``total``).

        Raises:
            InvalidParameterError: ``page`` or ``limit`` out of range (nothing sent).
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> page = await client.get_activation_history(limit=20)
            >>> [a.activation_id for a in page.items], page.total
        """
        params = {
            "page": check.int_in_range(page, "page", 1),
            "limit": check.int_in_range(limit, "limit", 1, 50),
        }
        reply = await self._http.fetch(
            "get_activation_history", "GET", "/activation/history", params=params, idempotent=True
        )
        page_ = self._http.decode_page(reply, Activation, "activations")
        await self._orders.observe_all(page_.items)
        return page_

    async def iter_activation_history(self, *, limit: int = 50) -> AsyncIterator[Activation]:
        """Every past activation, newest first, page after page (``limit`` per request, 1-50).

        An activation that shifts to the next page while iterating is yielded once. The
        history allows 6 requests a minute, so a long history takes a while.

        Yields:
            Each :class:`Activation` once.

        Raises:
            InvalidParameterError: ``limit`` out of range (nothing sent).
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> async for past in client.iter_activation_history():
            ...     print(past.activation_id, past.activation_status)
        """
        check.int_in_range(limit, "limit", 1, 50)
        async for item in self._paginate(self.get_activation_history, limit, _activation_key):
            yield item

    # -- watching and holding ---------------------------------------------------------------

    def watch_activation(
        self, activation: str | Activation, *, interval: float = 10.0
    ) -> AsyncGenerator[Activation, None]:
        """Yield the activation's state now, then each change, until it is settled.

        Polls ``get_activation`` every ``interval`` seconds (with a little jitter) and
        stops after yielding a state where an SMS has arrived (``smsReceived`` or
        ``retryReceived``), the activation is no longer ``active``, or ``expire_at`` has
        passed (one last poll confirms it). Connection errors, 5xx and rate-limit waits
        do not end the watch; a webhook (``platfone_async.webhooks``) wakes it at once.
        After ``retry_activation``, a new watch waits for the next SMS. Breaking out of
        the loop leaves nothing running (``aclose()`` the iterator to end it at once).

        Args:
            activation: The activation, or its id.
            interval: Seconds between polls (10, as the API asks).

        Yields:
            The current state first, then each state that differs from the last.

        Raises:
            InvalidParameterError: A bad id or ``interval`` (at the call, nothing sent).
            NotFoundError: No such activation on this key (a permanent error ends it).
            AuthenticationError: The key is refused.
            ResponseDecodeError: Answers carried a code but never decoded again: raised at
                the end rather than reporting an activation without its SMS.

        Examples:
            >>> async for state in client.watch_activation(activation):
            ...     print(state.sms_status, state.activation_status)
        """
        # The watch itself, not a generator around it: ten thousand watchers hold one
        # frame each, and each state passes one layer.
        _watch.check_interval(interval)
        _watch.id_of(activation)
        return _watch.watch(self, activation, interval=interval)

    async def wait_for_sms(
        self,
        activation: str | Activation,
        *,
        timeout: float | None = None,
        interval: float = 10.0,
        progress: bool | TextIO | Callable[[Activation], object] = False,
    ) -> Activation:
        """Wait until an SMS arrives and return the state that carries it.

        Watches as :meth:`watch_activation` does (a webhook wakes it at once). You hold
        the number: finalize or cancel it yourself, or use :meth:`activation`, which does.

        ``progress=True`` shows the wait on stderr as text (a text stream instead of
        True: there): on a terminal or in Jupyter one line rewritten every second (the
        number, its status, the time left until ``expire_at``, then the code),
        elsewhere a line per change. A callable instead is called with each state seen
        (on the event loop, for the sync client).

        Args:
            activation: The activation, or its id.
            timeout: The longest wait in seconds (None: until the activation ends).
            interval: Seconds between polls (10, as the API asks).
            progress: Show the wait (True, a text stream) or report each state (a callable).

        Returns:
            The first state with an SMS (``sms_code``, ``sms_text``).

        Raises:
            ActivationEndedError: The activation expired, was cancelled or finalized
                first (``.activation`` is the last state).
            WaitTimeoutError: ``timeout`` seconds passed first (also a ``TimeoutError``).
            InvalidParameterError: A bad id, ``timeout`` or ``interval`` (nothing sent).
            NotFoundError: No such activation on this key.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> try:
            ...     activation = await client.wait_for_sms(activation, timeout=600)
            ... except WaitTimeoutError:
            ...     await client.cancel_activation(activation)
        """
        return await _watch.wait_for_sms(
            self, activation, timeout=timeout, interval=interval, progress=progress
        )

    @contextlib.asynccontextmanager
    async def activation(
        self,
        service_id: str,
        country_id: str | Sequence[str] | None,
        *,
        prefer: Literal["balanced", "price", "quality"] = "balanced",
        max_price: int | None = None,
        price_ceiling: int | None = None,
        quality_factor: float | None = None,
        wait_for_slot: bool = True,
    ) -> AsyncIterator[ActivationSession]:
        """Order a number and hold it for the block; settle it whatever ends the block.

        ``async with client.activation("telegram", "uk") as session:`` orders a number
        and yields a session (``.activation`` is the latest state; ``.wait_for_sms()``,
        ``.retry()``, ``.watch()``, ``.finalize()``, ``.cancel()``, ``.report(...)``).
        With ``price_ceiling``, a :class:`MaxPriceExceededError` is answered by ordering
        again at its ``suggested_price`` with its ``order_id``, never above the ceiling.

        ``country_id`` may also be a list of candidate countries, or None for every
        country that sells the service: the session then orders the best offer as
        :meth:`rank_offers` ranks them by ``prefer``, and goes on to the next when a
        country has no number or a price within the ceiling (see the guide "Getting a
        code at the best offer"). It never sends a ``max_price`` above ``price_ceiling``.

        On leaving the block - normally, by an exception, by cancellation or by
        KeyboardInterrupt - an activation that got its SMS and was billed is finalized,
        one without an SMS is cancelled (once ``cancelable_after`` allows), and any
        other is left to expire; ``session.outcome`` says which. The clean-up is
        shielded from cancellation and never hides the exception that ended the block.
        It is never silent: while it waits for ``cancelable_after`` it says so at once (a
        warning on the ``platfone_async`` logger, on stderr when logging is not set up),
        and a second Ctrl-C leaves the number to expire and returns at once, saying so.

        Args:
            service_id: The service to receive an SMS from.
            country_id: The number's country; or the candidates (a list of ids), or None
                for every country that sells the service.
            prefer: How candidates are ranked: ``"balanced"`` (quality per price),
                ``"price"`` or ``"quality"``; unused with one country.
            max_price: The most to pay for the first order, in USD cents.
            price_ceiling: The most to pay when prices move (at least ``max_price``).
            quality_factor: 0 (cheapest) to 100 (best quality).
            wait_for_slot: Wait for a free slot under the active-activations limit.

        Yields:
            The :class:`ActivationSession` holding the number.

        Raises:
            InvalidParameterError: An argument out of range, or ``max_price`` above
                ``price_ceiling`` (nothing sent).
            MaxPriceExceededError: The price is above ``max_price`` without a
                ``price_ceiling``, or above the ceiling (of the last candidate tried).
            NoNumbersAvailableError: No number in the country (in any candidate).
            PlatfoneError: Any other error of :meth:`create_activation`, raised before the
                block runs: no number is held then.

        Examples:
            >>> async with client.activation("telegram", "uk", price_ceiling=200) as session:
            ...     activation = await session.wait_for_sms(timeout=600)
            ...     print("code:", activation.sms_code)
            >>> session.outcome
            <SessionOutcome.FINALIZED: 'finalized'>
            >>> async with client.activation("telegram", None, prefer="price") as session:
            ...     print(session.activation.country_id)  # the cheapest country in stock
        """
        async with open_session(
            self,
            service_id,
            country_id,
            prefer=prefer,
            max_price=max_price,
            price_ceiling=price_ceiling,
            quality_factor=quality_factor,
            wait_for_slot=wait_for_slot,
        ) as session:
            yield session

    # -- prices and catalog ---------------------------------------------------------------
    # The catalog and report models, catalog search and offers load with their first use
    # (imported in the methods), as the package's names for them do: ~10 ms of an import.

    async def get_price(self, service_id: str, country_id: str) -> PriceInfo:
        """Price range, quality and stock for one service in one country.

        Args:
            service_id: The service.
            country_id: The country.

        Returns:
            A :class:`PriceInfo`: ``price`` (``min``, ``max``, ``suggested``, in cents),
            ``quality`` and ``count`` (numbers in stock).

        Raises:
            InvalidParameterError: A malformed id (nothing sent).
            NotFoundError: The server knows no such service or country.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> info = await client.get_price("telegram", "uk")
            >>> info.price.suggested, info.count
        """
        from ._models._catalog import PriceInfo

        sid = check.service_id(service_id)
        cid = check.country_id(country_id)
        reply = await self._http.fetch(
            "get_price",
            "GET",
            f"/activation/prices/services/{sid}/countries/{cid}",
            idempotent=True,
        )
        return self._http.decode_reply(reply, PriceInfo)

    async def get_prices_by_country(self, country_id: str | None = None) -> list[CountryPrices]:
        """The price list by country: every country, or only ``country_id``.

        Returns:
            One :class:`CountryPrices` per country, with the price of each service there.

        Raises:
            InvalidParameterError: A malformed ``country_id`` (nothing sent).
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> [uk] = await client.get_prices_by_country("uk")
        """
        from ._models._catalog import CountryPrices

        params = {} if country_id is None else {"country_id": check.country_id(country_id)}
        reply = await self._http.fetch(
            "get_prices_by_country",
            "GET",
            "/activation/prices/countries",
            params=params,
            idempotent=True,
        )
        return self._http.decode_reply(reply, list[CountryPrices])

    async def get_prices_by_service(self, service_id: str | None = None) -> list[ServicePrices]:
        """The price list by service: every service, or only ``service_id``.

        Returns:
            One :class:`ServicePrices` per service, with its price in each country.

        Raises:
            InvalidParameterError: A malformed ``service_id`` (nothing sent).
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> [telegram] = await client.get_prices_by_service("telegram")
        """
        from ._models._catalog import ServicePrices

        params = {} if service_id is None else {"service_id": check.service_id(service_id)}
        reply = await self._http.fetch(
            "get_prices_by_service",
            "GET",
            "/activation/prices/services",
            params=params,
            idempotent=True,
        )
        return self._http.decode_reply(reply, list[ServicePrices])

    async def rank_offers(
        self,
        service_id: str,
        country_ids: str | Sequence[str] | None = None,
        *,
        prefer: Literal["balanced", "price", "quality"] = "balanced",
        price_ceiling: int | None = None,
    ) -> list[Offer]:
        """The countries that sell ``service_id``, best offer first, from its price list.

        ``country_ids`` limits them to these candidates (default: every country that
        sells the service). ``prefer="price"`` ranks the cheapest first, ``"quality"``
        the best quality first, and ``"balanced"`` (the default) by quality per price -
        the chance of a code per cent reserved, so an offer twice the price must be
        twice as likely to get its SMS to rank alike. A country with nothing in stock,
        or whose cheapest number costs more than ``price_ceiling`` (1-10000 cents), is
        left out. One request (``get_prices_by_service``); nothing is ordered.

        Returns:
            A list of :class:`Offer` (``country_id``, ``price``, ``quality``, ``count``,
            ``score``); empty when no candidate sells the service within the ceiling.

        Raises:
            InvalidParameterError: A bad id, ``prefer`` or ``price_ceiling`` (nothing sent).
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> offers = await client.rank_offers("telegram", ["uk", "de"], price_ceiling=150)
            >>> best = offers[0]  # e.g. Offer(country_id='de', price=120, quality=0.82, ...)
        """
        from ._offers import rank

        checked = check.service_id(service_id)
        only = check.country_ids(country_ids)
        chosen = check.prefer(prefer)
        if price_ceiling is not None:
            check.max_price(price_ceiling, "price_ceiling")
        lists = await self.get_prices_by_service(checked)
        countries = [
            c for listing in lists if listing.service_id == checked for c in listing.countries
        ]
        return rank(countries, only=only, prefer=chosen, price_ceiling=price_ceiling)

    async def get_countries(self) -> list[Country]:
        """Every country numbers can be ordered in (cached; revalidated by ETag).

        Returns:
            A :class:`Country` per country (``country_id``, ``name``, dialling codes).

        Raises:
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> ids = [c.country_id for c in await client.get_countries()]
        """
        from ._models._catalog import Country

        return await self._get_catalog("get_countries", "/activation/countries", Country)

    async def get_services(self) -> list[Service]:
        """Every service numbers can be ordered for (cached; revalidated by ETag).

        Returns:
            A :class:`Service` per service (``prohibited`` ones cannot be ordered).

        Raises:
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> ids = [s.service_id for s in await client.get_services() if not s.prohibited]
        """
        from ._models._catalog import Service

        return await self._get_catalog("get_services", "/activation/services", Service)

    async def get_popular_services(self) -> list[Service]:
        """The most popular services (cached; revalidated by ETag).

        Returns:
            A :class:`Service` per popular service.

        Raises:
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> popular = await client.get_popular_services()
        """
        from ._models._catalog import Service

        return await self._get_catalog(
            "get_popular_services", "/activation/services/popular", Service
        )

    async def find_service(self, query: str, *, limit: int = 5) -> list[CatalogMatch[Service]]:
        """The services ``query`` may mean, best first, from the cached catalog.

        ``query`` is an id, a name, an ``alt_name`` or a part of a name (``"Gmail"``),
        compared without case, accents or punctuation. When it names a service that way,
        the list holds just that service (``exact`` is true; more than one only when
        the catalog repeats a name); otherwise up to ``limit`` close matches (names that
        start with it, contain it or look like it), or none. Prohibited services are
        never offered.

        Returns:
            :class:`CatalogMatch` es (``item``, ``exact``, ``score``), best first; empty
            when nothing is close.

        Raises:
            PlatfoneError: As every call (see :class:`AsyncPlatfone`), reading the catalog.

        Examples:
            >>> [match] = await client.find_service("WhatsApp")
            >>> match.item.service_id, match.exact
            ('whatsapp', True)
        """
        from ._find import rank

        services = [s for s in await self.get_services() if not s.prohibited]
        return rank(services, query, limit=limit)

    async def find_country(self, query: str, *, limit: int = 5) -> list[CatalogMatch[Country]]:
        """The countries ``query`` may mean, best first, from the cached catalog.

        As :meth:`find_service`: an id (``"uk"``), a name (``"United Kingdom"``), an
        ``alt_name`` or a part of a name, without case, accents or punctuation; exact
        matches alone, else up to ``limit`` close ones, or none.

        Returns:
            :class:`CatalogMatch` es (``item``, ``exact``, ``score``), best first.

        Raises:
            PlatfoneError: As every call (see :class:`AsyncPlatfone`), reading the catalog.

        Examples:
            >>> [match] = await client.find_country("united kingdom")
            >>> match.item.country_id
            'uk'
        """
        from ._find import rank

        return rank(await self.get_countries(), query, limit=limit)

    async def _get_catalog(self, endpoint: str, path: str, item_cls: type[T]) -> list[T]:
        cached = self._catalog.get(path)
        headers = {"If-None-Match": cached[0]} if cached is not None else None
        reply = await self._http.fetch(endpoint, "GET", path, headers=headers, idempotent=True)
        if reply.response.status_code == 304 and cached is not None:
            return list(cached[1])
        items: list[T] = self._http.decode_reply(reply, list[item_cls])  # type: ignore[valid-type]
        etag = reply.response.headers.get("x-etag") or reply.response.headers.get("etag")
        if etag:
            self._catalog[path] = (etag, items)
        return list(items)

    # -- account --------------------------------------------------------------------------

    async def get_balance(self) -> Balance:
        """The account balance in USD cents (``available`` = total - reserved).

        Returns:
            A :class:`Balance`: ``total``, ``reserved`` (held for active numbers) and
            ``available``.

        Raises:
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> balance = await client.get_balance()
            >>> print(f"{balance.available / 100:.2f} USD available")
        """
        reply = await self._http.fetch("get_balance", "GET", "/user/balance", idempotent=True)
        return self._http.decode_reply(reply, Balance)

    # -- reports --------------------------------------------------------------------------

    async def get_report_reasons(self, activation_id: str | Activation) -> list[ReportReason]:
        """The reasons a report may be filed for, given the activation's current state.

        Returns:
            A :class:`ReportReason` per reason; pass its id to :meth:`create_report`.

        Raises:
            InvalidParameterError: A malformed activation id (nothing sent).
            NotFoundError: No such activation on this key.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> reasons = await client.get_report_reasons(activation)
        """
        from ._models._reports import ReportReason

        aid = _activation_id(activation_id)
        reply = await self._http.fetch(
            "get_report_reasons", "GET", f"/activation/{aid}/report/reasons", idempotent=True
        )
        return self._http.decode_reply(reply, list[ReportReason])

    async def create_report(
        self,
        activation_id: str | Activation,
        reason_id: int,
        *,
        message: str | None = None,
        evidence: Evidence | None = None,
    ) -> ReportResult:
        """Report a problem with an activation (one report per activation).

        Sent as ``multipart/form-data``, once (a report is never resent). A declined
        report carries a ``decline_id``; an approved one refunds the price.

        Args:
            activation_id: The activation (or its id).
            reason_id: One of :meth:`get_report_reasons`' ids (>= 1).
            message: Details, at most 1000 characters.
            evidence: A jpg, png, webp, zip, pdf or mp4 file of at most 5 MB: its bytes,
                a path, or a file opened in binary mode.

        Returns:
            A :class:`ReportResult`: the report's status.

        Raises:
            InvalidParameterError: A bad id, reason, message or evidence file (nothing
                sent).
            ReportDeadlinePassedError: It is too late to report this activation.
            ConflictError: The activation cannot be reported (already reported, say).
            NotFoundError: No such activation on this key.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> [reason, *_] = await client.get_report_reasons(activation)
            >>> result = await client.create_report(activation, reason.reason_id, evidence="a.png")
        """
        from ._models._reports import ReportResult

        aid = _activation_id(activation_id)
        fields: dict[str, Any] = {
            "reason_id": (None, str(check.int_in_range(reason_id, "reason_id", 1)))
        }
        if message is not None:
            fields["message"] = (None, check.message(message))
        if evidence is not None:
            if isinstance(evidence, (bytes, bytearray, memoryview)):
                content, filename = bytes(evidence), None
            else:
                content, filename = await anyio.to_thread.run_sync(check.read_evidence, evidence)
            fields["evidence"] = check.evidence_file(content, filename)
        response = await self._http.send(
            "create_report",
            "POST",
            f"/activation/{aid}/report",
            files=fields,
            idempotent=False,
        )
        return self._http.decode(response, ReportResult)

    async def get_report(self, activation_id: str | Activation) -> Report:
        """The report filed for an activation.

        Returns:
            The :class:`Report`: its reason, message, dates, and the activation (whose
            ``report_status`` says where the report stands).

        Raises:
            InvalidParameterError: A malformed activation id (nothing sent).
            NotFoundError: No such activation, or no report for it.
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> report = await client.get_report(activation)
            >>> report.activation.report_status
        """
        from ._models._reports import Report

        aid = _activation_id(activation_id)
        reply = await self._http.fetch(
            "get_report", "GET", f"/activation/{aid}/report", idempotent=True
        )
        return self._http.decode_reply(reply, Report)

    async def get_reports(self, *, page: int = 1, limit: int = 10) -> Page[Report]:
        """One page of the account's reports (``limit`` 1-100).

        Returns:
            A :class:`Page` of :class:`Report` s.

        Raises:
            InvalidParameterError: ``page`` or ``limit`` out of range (nothing sent).
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> page = await client.get_reports(limit=50)
        """
        from ._models._reports import Report

        params = {
            "page": check.int_in_range(page, "page", 1),
            "limit": check.int_in_range(limit, "limit", 1, 100),
        }
        reply = await self._http.fetch(
            "get_reports", "GET", "/activation/reports", params=params, idempotent=True
        )
        return self._http.decode_page(reply, Report, "reports")

    async def iter_reports(self, *, limit: int = 100) -> AsyncIterator[Report]:
        """Every report, page after page (``limit`` per request, 1-100).

        Yields:
            Each :class:`Report` once.

        Raises:
            InvalidParameterError: ``limit`` out of range (nothing sent).
            PlatfoneError: As every call (see :class:`AsyncPlatfone`).

        Examples:
            >>> async for report in client.iter_reports():
            ...     print(report.activation.activation_id, report.reason_name)
        """
        check.int_in_range(limit, "limit", 1, 100)
        async for item in self._paginate(self.get_reports, limit, _report_key):
            yield item

    async def _paginate(self, fetch: Any, limit: int, key: Any) -> AsyncIterator[Any]:
        seen: set[Any] = set()
        page = 1
        while True:
            result: Page[Any] = await fetch(page=page, limit=limit)
            for item in result.items:
                item_key = key(item)
                if item_key not in seen:
                    seen.add(item_key)
                    yield item
            if not result.items or page >= result.pages:
                return
            page += 1


def _activation_key(activation: Activation) -> str:
    return activation.activation_id


def _report_key(report: Report) -> str:
    return report.activation.activation_id
