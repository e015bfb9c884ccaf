"""The emulator's webhooks: signed deliveries of its events, retried, with faults on demand.

Every :class:`EmulatorEvent` of an account with a webhook target (an SMS or a retry's SMS
received, a report reviewed, the balance falling below the threshold) becomes a
delivery in an outbox: the JSON payload ``{"id", "api_version", "type", "data"}``,
POSTed with the ``x-webhook-id``/``x-timestamp``/``x-signature`` headers signed as
``platfone_async.webhooks.verify`` checks them (the timestamp is the moment of each
attempt). A delivery not answered 2xx is tried again after ``backoff``, doubling,
until ``max_attempts`` tries were made.

The emulator has no task of its own, so something must drive the outbox:

- ``await emulator.webhooks.deliver()`` sends every delivery due now, once, and returns
  the attempts made - for tests that step through events by hand;
- ``async with emulator.webhooks.running():`` runs one background task that sends each
  delivery when it falls due on the emulator's clock (retries and late deliveries
  included) until the block ends; what is still queued then stays queued.

Faults for tests: ``set_faults(duplicate=True)`` delivers every event twice,
``set_faults(delay=30)`` delivers each 30 clock seconds late, and ``pause()`` holds
deliveries until ``resume(reverse=True)`` sends them newest first (out of order).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import attrs
import httpx

from platfone_async.webhooks import signed_headers

from ._realclock import TimeSource
from ._records import EmulatorEvent

__all__ = ["EmulatorWebhooks", "WebhookAttempt"]

_API_VERSION = "1.0"
_ASGI_URL = "http://webhook.receiver/"


@attrs.frozen
class WebhookAttempt:
    """One try at delivering a webhook: when, which event, which try, and the answer.

    ``status`` is the HTTP status answered (None: no answer - ``error`` says why).
    """

    time: float
    event_id: str
    type: str
    attempt: int
    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@attrs.define
class _Target:
    url: str | None
    app: Any
    secret: str = attrs.field(repr=False)
    max_attempts: int
    backoff: float
    timeout: float


@attrs.define
class _Delivery:
    due: float
    seq: int
    event_id: str
    type: str
    api_key: str = attrs.field(repr=False)
    body: bytes
    tries: int = 0


class _Senders:
    """The httpx clients of one driving run: one for URLs, one per in-process app."""

    def __init__(self) -> None:
        self._clients: dict[int, httpx.AsyncClient] = {}

    async def post(self, target: _Target, headers: dict[str, str], body: bytes) -> int:
        client = self._client_for(target)
        url = target.url if target.url is not None else _ASGI_URL
        response = await client.post(url, content=body, headers=headers, timeout=target.timeout)
        return response.status_code

    def _client_for(self, target: _Target) -> httpx.AsyncClient:
        key = 0 if target.app is None else id(target.app)
        client = self._clients.get(key)
        if client is None:
            if target.app is None:
                client = httpx.AsyncClient(trust_env=False)
            else:
                transport = httpx.ASGITransport(app=target.app, raise_app_exceptions=False)
                client = httpx.AsyncClient(transport=transport)
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for client in self._clients.values():
                await client.aclose()


class EmulatorWebhooks:
    """The webhook side of a :class:`PlatfoneEmulator` (``emulator.webhooks``)."""

    def __init__(
        self,
        clock: TimeSource,
        sleep: Callable[[float], Awaitable[None]],
        default_api_key: str,
        seed: int = 0,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._default_api_key = default_api_key
        self._rng = random.Random(f"webhooks-{seed}")
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}
        self._outbox: list[_Delivery] = []
        self._seq = itertools.count()
        self._paused = False
        self._duplicate = False
        self._delay = 0.0
        #: Every attempt made so far, oldest first.
        self.attempts: list[WebhookAttempt] = []
        # The running task, if any: its cancel scope, and how to reach its thread.
        self._poked = False
        self._scope: anyio.CancelScope | None = None
        self._runner_thread: int | None = None
        self._call_soon: Callable[[Callable[[], object]], object] | None = None

    def __repr__(self) -> str:
        return f"<EmulatorWebhooks targets={len(self._targets)} pending={self.pending}>"

    # -- controls -------------------------------------------------------------------------

    def configure(
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
        """Send an account's events (default: the first) to ``url`` or an ASGI ``app``.

        With ``app`` the POST goes in-process (``url``, if given, is only its URL);
        ``secret`` signs them. A failed delivery is tried ``max_attempts`` times in
        all, ``backoff`` clock seconds after the first failure, doubling each time.
        """
        if url is None and app is None:
            raise ValueError("give the receiver's url, or an ASGI app to call in-process")
        if not secret:
            raise ValueError("webhooks need a secret to sign them with")
        if max_attempts < 1 or backoff < 0 or timeout <= 0:
            raise ValueError("need max_attempts >= 1, backoff >= 0 and timeout > 0")
        target = _Target(url, app, secret, max_attempts, backoff, timeout)
        with self._lock:
            self._targets[api_key or self._default_api_key] = target

    def disable(self, api_key: str | None = None) -> None:
        """Stop sending an account's events (queued deliveries to it are dropped)."""
        key = api_key or self._default_api_key
        with self._lock:
            self._targets.pop(key, None)
            self._outbox = [d for d in self._outbox if d.api_key != key]

    def set_faults(self, *, duplicate: bool = False, delay: float = 0.0) -> None:
        """From now on, deliver each event twice and/or ``delay`` clock seconds late."""
        if delay < 0:
            raise ValueError("delay must be >= 0")
        with self._lock:
            self._duplicate = duplicate
            self._delay = float(delay)

    def pause(self) -> None:
        """Hold every delivery (events still queue up) until :meth:`resume`."""
        with self._lock:
            self._paused = True

    def resume(self, *, reverse: bool = False) -> None:
        """Send what was held; ``reverse``: newest event first (out of order)."""
        with self._lock:
            self._paused = False
            if reverse:
                for delivery in sorted(self._outbox, key=lambda d: d.seq, reverse=True):
                    delivery.seq = next(self._seq)
        self._poke()

    def send(self, type: str, data: Any, *, api_key: str | None = None) -> str:
        """Queue an event of any ``type`` (an unknown one, say); returns its id."""
        key = api_key or self._default_api_key
        event = EmulatorEvent(type, key, data, self._clock.time())
        event_id = self._queue(event)
        if event_id is None:
            raise ValueError("no webhook target is configured for that account")
        return event_id

    def drop_pending(self) -> None:
        """Forget every queued delivery and every attempt made (the emulator's reset)."""
        with self._lock:
            self._outbox.clear()
            self.attempts.clear()

    @property
    def pending(self) -> int:
        """Deliveries queued: not yet made, or waiting to be retried."""
        return len(self._outbox)

    # -- the outbox -----------------------------------------------------------------------

    def listen(self, event: EmulatorEvent) -> None:
        """Queue ``event`` if its account has a target (called as events happen)."""
        self._queue(event)

    def _queue(self, event: EmulatorEvent) -> str | None:
        with self._lock:
            if event.api_key not in self._targets:
                return None
            event_id = f"evt_{self._rng.getrandbits(96):024x}"
            payload = {"id": event_id, "api_version": _API_VERSION, "type": event.type}
            body = json.dumps({**payload, "data": event.data}, separators=(",", ":")).encode()
            due = event.time + self._delay
            for _ in range(2 if self._duplicate else 1):
                delivery = _Delivery(
                    due, next(self._seq), event_id, event.type, event.api_key, body
                )
                self._outbox.append(delivery)
        self._poke()
        return event_id

    def _take_due(self, now: float) -> list[_Delivery]:
        with self._lock:
            if self._paused:
                return []
            due = sorted((d for d in self._outbox if d.due <= now), key=lambda d: d.seq)
            self._outbox = [d for d in self._outbox if d.due > now]
            return due

    def _next_due(self) -> float | None:
        if self._paused or not self._outbox:
            return None
        return min(d.due for d in self._outbox)

    async def _attempt(self, delivery: _Delivery, senders: _Senders) -> WebhookAttempt | None:
        with self._lock:
            target = self._targets.get(delivery.api_key)
        if target is None:
            return None
        delivery.tries += 1
        now = self._clock.time()
        headers = signed_headers(
            delivery.body, target.secret, webhook_id=delivery.event_id, timestamp=int(now)
        )
        headers["content-type"] = "application/json"
        status: int | None = None
        error: str | None = None
        try:
            status = await senders.post(target, headers, delivery.body)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempt = WebhookAttempt(
            now, delivery.event_id, delivery.type, delivery.tries, status, error
        )
        with self._lock:
            self.attempts.append(attempt)
            if not attempt.delivered and delivery.tries < target.max_attempts:
                delivery.due = self._clock.time() + target.backoff * 2 ** (delivery.tries - 1)
                self._outbox.append(delivery)
        return attempt

    async def _deliver_due(self, senders: _Senders) -> list[WebhookAttempt]:
        made = []
        for delivery in self._take_due(self._clock.time()):
            attempt = await self._attempt(delivery, senders)
            if attempt is not None:
                made.append(attempt)
        return made

    # -- driving it -----------------------------------------------------------------------

    async def deliver(self) -> list[WebhookAttempt]:
        """Send every delivery due now, once each; returns the attempts made.

        A failed one is queued again for its retry (due after its backoff).
        """
        senders = _Senders()
        try:
            return await self._deliver_due(senders)
        finally:
            await senders.aclose()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EmulatorWebhooks]:
        """Deliver in the background, each delivery when it is due, until the block ends."""
        if self._runner_thread is not None:
            raise RuntimeError("the webhooks are already running")
        senders = _Senders()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._run, senders)
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with self._lock:
                self._scope = None
                self._runner_thread = None
                self._call_soon = None
            await senders.aclose()

    async def _run(self, senders: _Senders) -> None:
        with self._lock:
            self._runner_thread = threading.get_ident()
            self._call_soon = _call_soon_threadsafe()
        while True:
            await self._deliver_due(senders)
            with self._lock:
                if self._poked:
                    self._poked = False
                    continue
                next_due = self._next_due()
                scope = self._scope = anyio.CancelScope()
            with scope:
                if next_due is None:
                    await anyio.sleep_forever()
                else:
                    await self._sleep(next_due - self._clock.time())
            with self._lock:
                self._scope = None
                self._poked = False

    def _poke(self) -> None:
        """Make the running task look at the outbox again (from any thread)."""
        with self._lock:
            self._poked = True
            scope, thread, call_soon = self._scope, self._runner_thread, self._call_soon
        if scope is None or call_soon is None:
            return
        if thread == threading.get_ident():
            scope.cancel()
        else:
            with contextlib.suppress(RuntimeError):  # its event loop has ended
                call_soon(scope.cancel)


def _call_soon_threadsafe() -> Callable[[Callable[[], object]], object]:
    """How another thread schedules a call in the event loop running here."""
    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
