"""`PlatfoneEmulator`: a stateful fake Platfone server, and the controls to steer it.

The module is long (about 550 lines) on purpose: the class is the one public face of
every control, each a few lines that lock, forward to the ledger and return, and the
control API (``_control.OPERATIONS``) calls these very methods by name; split into
mixins, that face would be scattered over files that each make sense only together.
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import attrs
import httpx

from ._asgi import Receive, Request, Response, Scope, Send, read_request, send_response
from ._asgi import serve_lifespan as _serve_lifespan
from ._catalog import Catalog, Offer, default_catalog
from ._control import CONTROL_PREFIX
from ._control import answer as answer_control
from ._faults import Fault, FaultPlan, answer_instead, spoil
from ._ledger import Ledger
from ._realclock import RealClock, TimeSource
from ._records import Account, ActivationRecord, EmulatorEvent, RequestRecord
from ._reports import Reports
from ._routes import Handlers, match_route
from ._sms import SmsPolicy, SmsScheduler
from ._webhooks import EmulatorWebhooks
from ._windows import DOCUMENTED_LIMITS, LimitLike, RollingWindows, as_pair
from ._wire import WireError, not_found, rate_limited

if TYPE_CHECKING:
    from platfone_async import AsyncPlatfone

__all__ = ["DEFAULT_BASE_URL", "PlatfoneEmulator"]

DEFAULT_BASE_URL = "http://platfone.test/api/v1"
_PREFIXES = ("/api/v1", "/test/api/v1")


class PlatfoneEmulator:
    """A fake Platfone that keeps state and follows the reference's rules.

    ``emulator.app`` is a plain ASGI application: use it in-process through
    ``httpx.ASGITransport`` (:meth:`client` does it for you) or serve it with
    ``python -m platfone_async.testing serve``. One account exists from the start,
    its key in :attr:`api_key`. Time is ``clock.time()`` (the real time by default; pass
    a :class:`VirtualClock` and a 20-minute expiry takes no time at all).

    ``sms_policy`` makes SMS arrive by themselves (default: only :meth:`deliver_sms`).
    ``rate_limits`` maps route names (the SDK's method names) to ``(calls, period)`` or
    a ``RateLimit``; it defaults to the reference's table and ``None`` switches every
    limit off; ``rate_limit_scale`` multiplies each ``calls``. ``max_active=None`` and
    ``success_rate_check=False`` switch off the other two limits. A 409's ``orderId``
    is good for ``order_token_lifetime`` seconds (then "Order not found"); an activation
    may be reported until ``report_deadline`` seconds after its creation (then 409
    ``ReportCreationDeadlinePassed``). Everything is deterministic for a given ``seed``.

    Every control below is also an operation of the control API, which a served emulator
    answers over HTTP under ``/_emulator/`` (see ``platfone_async.testing.OPERATIONS``).
    """

    #: The reference's table: route name -> (calls, period in seconds).
    DOCUMENTED_RATE_LIMITS: ClassVar[Mapping[str, tuple[int, float]]] = DOCUMENTED_LIMITS

    def __init__(
        self,
        *,
        clock: TimeSource | None = None,
        api_key: str | None = None,
        balance: int = 10_000,
        seed: int = 0,
        catalog: Catalog | None = None,
        sms_policy: SmsPolicy | None = None,
        rate_limits: Mapping[str, LimitLike] | None = DOCUMENTED_LIMITS,
        rate_limit_scale: float = 1.0,
        max_active: int | None = 20,
        success_rate_check: bool = True,
        activation_lifetime: int = 1200,
        low_balance_threshold: int = 100,
        order_token_lifetime: float = 600.0,
        report_deadline: float = 86_400.0,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        self.clock: TimeSource = clock if clock is not None else RealClock()
        self.base_url = base_url
        self._seed = seed
        self._catalog_template = copy.deepcopy(catalog) if catalog is not None else None
        self._lock = threading.RLock()
        self._listeners: list[Callable[[EmulatorEvent], None]] = []
        self._opened: list[tuple[str, int, bool]] = []  # each account as it was opened
        self._windows = RollingWindows(rate_limits or {}, rate_limit_scale)
        self._faults = FaultPlan()
        self._build_state(
            sms_policy,
            {},
            max_active=max_active,
            success_rate_check=success_rate_check,
            activation_lifetime=activation_lifetime,
            low_balance_threshold=low_balance_threshold,
            order_token_lifetime=order_token_lifetime,
            report_deadline=report_deadline,
        )
        self.api_key: str = self.add_account(api_key, balance=balance)
        #: Signed webhooks of this emulator's events: configure, drive and steer them here.
        self.webhooks = EmulatorWebhooks(self.clock, self._sleep, self.api_key, seed)

    def _build_state(
        self,
        sms_policy: SmsPolicy | None,
        sms_per_service: Mapping[str, SmsPolicy | None],
        **settings: Any,
    ) -> None:
        """A fresh catalog, ledger and request log, with these settings and SMS policies."""
        self.catalog = copy.deepcopy(self._catalog_template) or default_catalog(self._seed)
        self.requests: list[RequestRecord] = []
        self._rng = random.Random(self._seed)
        self._scheduler = SmsScheduler(self._rng, sms_policy)
        self._scheduler.per_service.update(sms_per_service)
        self._ledger = Ledger(self.catalog, self._rng, self._scheduler, self._emit)
        self._reports = Reports(self._ledger, self._evidence_url)
        self._handlers = Handlers(self.catalog, self._ledger, self._reports)
        self._ledger.max_active = settings["max_active"]
        self._ledger.success_rate_check = settings["success_rate_check"]
        self._ledger.activation_lifetime = settings["activation_lifetime"]
        self._ledger.low_balance_threshold = settings["low_balance_threshold"]
        self._ledger.order_token_lifetime = settings["order_token_lifetime"]
        self._reports.deadline = settings["report_deadline"]

    def reset(self) -> None:
        """Back to the state it started in: every account opened again with its opening
        balance (same keys), no activations, reports, requests, faults or counted
        requests, queued webhooks dropped. Settings, SMS policies, the webhook targets
        and the clock stay as they are.
        """
        with self._lock:
            ledger = self._ledger
            self._build_state(
                self._scheduler.default,
                dict(self._scheduler.per_service),
                max_active=ledger.max_active,
                success_rate_check=ledger.success_rate_check,
                activation_lifetime=ledger.activation_lifetime,
                low_balance_threshold=ledger.low_balance_threshold,
                order_token_lifetime=ledger.order_token_lifetime,
                report_deadline=self._reports.deadline,
            )
            self._faults.clear()
            self._windows.reset()
            for key, balance, verified in self._opened:
                self._ledger.accounts[key] = Account(key, balance, email_verified=verified)
        self.webhooks.drop_pending()

    def __repr__(self) -> str:
        return f"<PlatfoneEmulator {self.base_url} accounts={len(self._ledger.accounts)}>"

    # -- the ASGI application ---------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        if scope["type"] == "lifespan":
            await _serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the emulator speaks HTTP only, not {scope['type']}")
        request = await read_request(scope, receive)
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            await send_response(send, answer_control(self, request))
            return
        try:
            route, request.params = self._route(request)
        except WireError as error:
            self._arrived(request, "unknown", None).status = error.status
            await send_response(send, Response.error(error))
            return
        with self._lock:
            fault = self._faults.take(route)
        if fault is not None and fault.delay:
            await self._sleep(fault.delay)
        record = self._arrived(request, route, fault)
        if fault is not None and fault.acts_before:
            response = await answer_instead(send, fault, self.clock.time())
        else:
            response = self._handle(route, request)
            if fault is not None:
                if fault.answer_delay:
                    await self._sleep(fault.answer_delay)
                response = await spoil(send, response, fault, self.clock.time())
        record.status = response.status
        await send_response(send, response)

    def _evidence_url(self, activation_id: str) -> str:
        """Where a report's evidence is served: ``GET /_emulator/evidence/{id}``."""
        return f"{self.control_url}evidence/{activation_id}"

    def _route(self, request: Request) -> tuple[str, dict[str, str]]:
        for prefix in _PREFIXES:
            if request.path.startswith(prefix + "/"):
                return match_route(request.method, request.path[len(prefix) :].rstrip("/"))
        raise not_found(f"no endpoint {request.method} {request.path}")

    def _arrived(self, request: Request, route: str, fault: Fault | None) -> RequestRecord:
        record = RequestRecord(
            self.clock.time(), request.method, request.path, route, request.api_key, None, fault
        )
        with self._lock:
            self.requests.append(record)
        return record

    def _handle(self, route: str, request: Request) -> Response:
        with self._lock:
            now = self.clock.time()
            self._ledger.sweep(now)
            try:
                account = self._ledger.account(request.api_key)
                if account.on_hold:
                    raise WireError(403, "ForbiddenException", "the account is on hold")
                reset_at = self._windows.admit(account.api_key, route, now)
                if reset_at is not None:
                    raise rate_limited(
                        "TooManyRequestsException", f"too many {route} requests", reset_at
                    )
                return self._handlers.handler(route)(account, request, now)
            except WireError as error:
                return Response.error(error)

    async def _sleep(self, seconds: float) -> None:
        sleep = getattr(self.clock, "sleep", None)
        if sleep is not None:
            await sleep(seconds)
        else:
            await anyio.sleep(seconds)

    def _emit(self, event: EmulatorEvent) -> None:
        # Every listener sees each event as it happens; webhooks queue it for delivery.
        for listener in list(self._listeners):
            listener(event)
        self.webhooks.listen(event)

    @property
    def control_url(self) -> str:
        """Where the control API answers: ``/_emulator/`` on the same host and port."""
        return str(httpx.URL(self.base_url).join(CONTROL_PREFIX + "/"))

    # -- clients ----------------------------------------------------------------------

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` wired to this emulator in-process."""
        kwargs.setdefault("base_url", self.base_url)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), **kwargs)

    def client(self, api_key: str | None = None, **kwargs: Any) -> AsyncPlatfone:
        """A ready ``AsyncPlatfone`` talking to this emulator in-process.

        It uses the emulator's clock too (when it is a full clock), so retries and
        rate limiting move in the same virtual time. ``kwargs`` go to ``AsyncPlatfone``.
        """
        from platfone_async import AsyncPlatfone

        if "clock" not in kwargs and all(
            hasattr(self.clock, name) for name in ("time", "monotonic", "sleep")
        ):
            kwargs["clock"] = self.clock
        return AsyncPlatfone(
            api_key=api_key or self.api_key,
            base_url=self.base_url,
            http_client=self.http_client(),
            **kwargs,
        )

    # -- accounts and money -----------------------------------------------------------

    def add_account(
        self, api_key: str | None = None, *, balance: int = 10_000, email_verified: bool = True
    ) -> str:
        """Open an account and return its API key (a fresh one unless given)."""
        with self._lock:
            key = api_key or f"emu_{self._rng.getrandbits(128):032x}"
            if key in self._ledger.accounts:
                raise ValueError("that API key already has an account")
            self._ledger.accounts[key] = Account(key, balance, email_verified=email_verified)
            self._opened.append((key, balance, email_verified))
            return key

    def set_balance(self, total: int, *, api_key: str | None = None) -> None:
        """Set an account's total balance (reserved money stays reserved)."""
        with self._lock:
            account = self._account(api_key)
            account.total = total
            self._ledger.note_balance(account, self.clock.time())

    def balance(self, api_key: str | None = None) -> dict[str, int]:
        """``{"total", "reserved", "available"}`` of an account, after due events."""
        with self._lock:
            self._ledger.sweep(self.clock.time())
            account = self._account(api_key)
            return {**account.balance_json(), "available": account.available}

    def unblock(self, api_key: str | None = None) -> None:
        """Lift a success-rate block; the rate is counted afresh from now."""
        with self._lock:
            account = self._account(api_key)
            account.blocked_until = None
            account.success_rate_since = self.clock.time()

    def set_on_hold(self, on_hold: bool = True, *, api_key: str | None = None) -> None:
        """Put an account on hold: every request it makes is answered 403 (until False)."""
        with self._lock:
            self._account(api_key).on_hold = on_hold

    def block(self, seconds: float = 86_400.0, *, api_key: str | None = None) -> None:
        """Block an account's orders for ``seconds`` (429 ``LowSuccessRateException``),
        as a low success rate would; :meth:`unblock` lifts it."""
        if seconds <= 0:
            raise ValueError("seconds must be > 0")
        with self._lock:
            self._account(api_key).blocked_until = self.clock.time() + seconds

    def _account(self, api_key: str | None) -> Account:
        account = self._ledger.accounts.get(api_key or self.api_key)
        if account is None:
            raise KeyError("no account with that API key")
        return account

    # -- SMS and time -----------------------------------------------------------------

    def deliver_sms(self, activation_id: str, code: str, text: str | None = None) -> bool:
        """An SMS with ``code`` reaches the activation's number now.

        Bills the first SMS; answers a retry. Returns False, changing nothing, when the
        activation already shows its SMS and no retry asked for another. Raises
        ``ValueError`` when the activation is no longer active.
        """
        with self._lock:
            now = self.clock.time()
            self._ledger.sweep(now)
            activation = self._known(activation_id)
            if activation.activation_status != "active":
                raise ValueError(
                    f"activation {activation_id} is {activation.activation_status}; "
                    "only an active activation receives SMS"
                )
            message = text if text is not None else f"Your verification code is {code}"
            return self._ledger.deliver(activation, code, message, now)

    def expire(self, activation_id: str) -> None:
        """End an active activation now as expired (its ``expire_at`` becomes now)."""
        self._end_by_server(activation_id, "expired")

    def cancel(self, activation_id: str) -> None:
        """Cancel an active activation server-side (whatever ``cancelable_after`` says)."""
        self._end_by_server(activation_id, "canceled")

    def finalize(self, activation_id: str) -> None:
        """Finalize an active activation with a billed SMS, server-side."""
        self._end_by_server(activation_id, "finalized")

    def _end_by_server(self, activation_id: str, status: str) -> None:
        with self._lock:
            now = self.clock.time()
            self._ledger.sweep(now)
            self._ledger.end_by_server(self._known(activation_id), status, now)

    def _known(self, activation_id: str) -> ActivationRecord:
        activation = self._ledger.activations.get(activation_id)
        if activation is None:
            raise KeyError(f"no activation {activation_id!r}")
        return activation

    def set_sms_policy(self, policy: SmsPolicy | None, *, service_id: str | None = None) -> None:
        """Deliver SMS automatically by ``policy`` (for one service, or by default)."""
        with self._lock:
            if service_id is None:
                self._scheduler.default = policy
            else:
                self._scheduler.per_service[service_id] = policy

    def set_offer(
        self,
        service_id: str,
        country_id: str,
        *,
        price: int,
        quality: float = 0.5,
        count: int = 100,
        retriable: bool = True,
        cancel_after: int | None = 120,
    ) -> None:
        """Sell ``service_id`` in ``country_id`` from one offer: its price (cents), quality
        (0..1: ``quality.avg`` in the price lists, and the SMS odds under an SMS policy
        with ``follow_quality``), stock (``count``, down by one per order) and terms."""
        if not 0.0 <= quality <= 1.0:
            raise ValueError(f"quality must be within 0..1, got {quality!r}")
        if price < 1 or count < 0:
            raise ValueError(f"price must be >= 1 and count >= 0, got {price!r}, {count!r}")
        with self._lock:
            if service_id not in self.catalog.services or country_id not in self.catalog.countries:
                raise KeyError(
                    f"no service {service_id!r} or country {country_id!r} in the catalog"
                )
            offer = Offer(price, quality, count, retriable, cancel_after)
            self.catalog.set_offers(service_id, country_id, [offer])

    def advance(self, seconds: float) -> None:
        """Move the clock forward (it needs an ``advance`` method) and apply what is due."""
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise TypeError("this clock cannot be advanced; pass clock=VirtualClock()")
        advance(seconds)
        self.tick()

    def tick(self) -> None:
        """Apply every SMS delivery and expiry that is due by the clock's time now."""
        with self._lock:
            self._ledger.sweep(self.clock.time())

    def next_event_at(self) -> float | None:
        """When the next promised automatic SMS is due, if any."""
        with self._lock:
            return self._scheduler.next_due()

    # -- webhooks ---------------------------------------------------------------------

    def configure_webhooks(
        self,
        url: str | None = None,
        *,
        secret: str,
        app: Any = None,
        api_key: str | None = None,
        max_attempts: int = 4,
        backoff: float = 1.0,
        timeout: float = 10.0,
    ) -> None:
        """Sign and send an account's events to ``url`` (or an in-process ASGI ``app``).

        As ``emulator.webhooks.configure(...)``; deliveries are driven by ``await
        emulator.webhooks.deliver()`` or ``async with emulator.webhooks.running():`` (a
        served emulator runs them itself).
        """
        self.webhooks.configure(
            url,
            secret=secret,
            app=app,
            api_key=api_key,
            max_attempts=max_attempts,
            backoff=backoff,
            timeout=timeout,
        )

    def webhook_attempts(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt so far, oldest first, as JSON-ready dicts."""
        return [{**attrs.asdict(a), "delivered": a.delivered} for a in self.webhooks.attempts]

    # -- reports ----------------------------------------------------------------------

    def approve_report(self, activation_id: str) -> None:
        """Approve the report in review; a billed activation is refunded."""
        with self._lock:
            self._reports.review(activation_id, True, 0, self.clock.time())

    def decline_report(self, activation_id: str, decline_id: int = 1) -> None:
        """Decline the report in review with a ``decline_id`` (1 or 2)."""
        with self._lock:
            self._reports.review(activation_id, False, decline_id, self.clock.time())

    # -- faults and limits ------------------------------------------------------------

    def inject_fault(self, route: str, fault: Fault, *, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests to ``route`` (``"*"``: any)."""
        with self._lock:
            self._faults.add(route, fault, times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_rate_limit(self, route: str, limit: LimitLike) -> None:
        """Change one route's window: ``(calls, period)``, a ``RateLimit``, or None."""
        with self._lock:
            self._windows.limits[route] = as_pair(limit)

    @property
    def rate_limits_enabled(self) -> bool:
        return self._windows.enabled

    @rate_limits_enabled.setter
    def rate_limits_enabled(self, enabled: bool) -> None:
        self._windows.enabled = enabled

    @property
    def rate_limit_scale(self) -> float:
        return self._windows.scale

    @rate_limit_scale.setter
    def rate_limit_scale(self, scale: float) -> None:
        self._windows.scale = scale

    @property
    def max_active(self) -> int | None:
        return self._ledger.max_active

    @max_active.setter
    def max_active(self, limit: int | None) -> None:
        self._ledger.max_active = limit

    @property
    def success_rate_check(self) -> bool:
        return self._ledger.success_rate_check

    @success_rate_check.setter
    def success_rate_check(self, enabled: bool) -> None:
        self._ledger.success_rate_check = enabled

    def reset_rate_windows(self) -> None:
        """Forget every request counted so far."""
        with self._lock:
            self._windows.reset()

    # -- what happened ----------------------------------------------------------------

    def activation(self, activation_id: str) -> dict[str, Any]:
        """An activation as the API would show it now."""
        with self._lock:
            self._ledger.sweep(self.clock.time())
            return self._known(activation_id).to_json()

    def activations(self, api_key: str | None = None) -> list[dict[str, Any]]:
        """Every activation of an account (default: the first), oldest first."""
        with self._lock:
            self._ledger.sweep(self.clock.time())
            ids = self._account(api_key).activation_ids
            return [self._ledger.activations[i].to_json() for i in ids]

    def report(self, activation_id: str) -> dict[str, Any] | None:
        """The report on an activation as the API shows it, or None.

        Adds what only the emulator knows: ``status``, ``decline_id``, ``evidence``
        (the uploaded bytes) and ``evidence_filename``.
        """
        with self._lock:
            found = self._ledger.reports.get(activation_id)
            if found is None:
                return None
            return {
                **self._reports.to_json(found),
                "status": found.status,
                "decline_id": found.decline_id,
                "evidence": found.evidence,
                "evidence_filename": found.evidence_filename,
            }

    def orders_placed(self, api_key: str | None = None) -> int:
        """How many activations an account has created (a 4xx places none)."""
        with self._lock:
            return len(self._account(api_key).activation_ids)

    def ledger(self, api_key: str | None = None) -> dict[str, Any]:
        """An account's books: ``orders_placed``, how many are ``billed``, ``refunded``,
        ``released``, ``reserved``, ``active``, ``finalized``, ``canceled``, ``expired``,
        the amounts billed and refunded, ``reports``, the ``balance``, hold and block."""
        with self._lock:
            self._ledger.sweep(self.clock.time())
            return self._ledger.summary(self._account(api_key))

    def request_log(self, route: str | None = None) -> list[dict[str, Any]]:
        """Every request received (or one route's), oldest first, as JSON-ready dicts."""
        with self._lock:
            return [r.to_json() for r in self.requests if route is None or r.route == route]

    def request_count(self, route: str | None = None, *, api_key: str | None = None) -> int:
        """Requests received, for one route and/or one key (faulted ones included)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (route is None or r.route == route) and (api_key is None or r.api_key == api_key)
            )

    def add_listener(self, listener: Callable[[EmulatorEvent], None]) -> None:
        """Call ``listener`` with every :class:`EmulatorEvent` (what webhooks would send)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[EmulatorEvent], None]) -> None:
        self._listeners.remove(listener)
