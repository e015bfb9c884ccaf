"""``WebhookHandler``: verify, parse, de-duplicate and dispatch deliveries; its ASGI app.

A delivery is handled in the request that carried it and does no network work: it is
verified, parsed, checked against the ids of recent events (Platfone may deliver an
event more than once), pushed to the watchers of every attached client (which only
sets a flag and wakes a sleeping coroutine) and passed to the user's callbacks. Those
should be quick too - hand slow work to a queue or a task of your own - since the
sender waits for the answer.

A callback that raises makes the delivery fail (the ASGI app answers 500, so the
sender retries it) and its event id is forgotten, so the retry is handled afresh.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._client import AsyncPlatfone
from .._clock import Clock, SystemClock
from .._enums import WebhookEventType
from .._errors import InvalidParameterError, WebhookVerificationError
from ._events import ActivationUpdated, WebhookEvent, WebhookPayloadError, parse_event
from ._push import PushHub, hub_for
from ._signature import DEFAULT_TOLERANCE, check_tolerance, secrets_of, verify

if TYPE_CHECKING:
    from .._sync._facade import Platfone

__all__ = ["ALL_EVENTS", "ASGIApp", "WebhookHandler", "webhook_app"]

logger = logging.getLogger("platfone_async")

#: Subscribe a callback to every event type: ``handler.on(ALL_EVENTS, callback)``.
ALL_EVENTS = "*"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: A plain ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

F = TypeVar("F", bound=Callable[[Any], object])

_MAX_BODY = 1 << 20  # a webhook is a few hundred bytes; a megabyte is plenty
_DRAIN_LIMIT = 16 * _MAX_BODY


class _RecentIds:
    """The ids of the last ``size`` events, forgetting the oldest first."""

    __slots__ = ("_ids", "_lock", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; False when it was already remembered."""
        with self._lock:
            if event_id in self._ids:
                self._ids.move_to_end(event_id)
                return False
            self._ids[event_id] = None
            if len(self._ids) > self.size:
                self._ids.popitem(last=False)
            return True

    def discard(self, event_id: str) -> None:
        with self._lock:
            self._ids.pop(event_id, None)

    def __len__(self) -> int:
        return len(self._ids)


class WebhookHandler:
    """Receives Platfone's webhooks: verifies, parses, de-duplicates, dispatches.

    ``secret`` is the webhook secret (or several, while you rotate it); it never
    appears in a repr, a message or a log line. ``tolerance`` is how far, in seconds,
    a delivery's timestamp may lie from now; ``dedup_size`` how many recent event ids
    are remembered to drop repeats. ``client`` (or :meth:`attach`) wires the handler
    into a client's watchers: an ``activation.updated`` event wakes the matching
    ``watch_activation`` / ``wait_for_sms`` at once. ``clock`` is where "now" is read
    for the timestamp check (default: the first attached client's clock, else the
    system clock).

    Serve it with :meth:`asgi_app`, or call :meth:`handle` from your own route.
    """

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        dedup_size: int = 10_000,
        client: AsyncPlatfone | Platfone | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._secrets = tuple(key.decode() for key in secrets_of(secret))
        if isinstance(dedup_size, bool) or not isinstance(dedup_size, int) or dedup_size < 1:
            raise InvalidParameterError("dedup_size", "must be an int >= 1", dedup_size)
        self.tolerance = check_tolerance(tolerance)
        self._clock = clock
        self._recent = _RecentIds(dedup_size)
        self._callbacks: dict[str, list[Callable[[Any], object]]] = {}
        self._hubs: list[PushHub] = []
        if client is not None:
            self.attach(client)

    def __repr__(self) -> str:
        callbacks = sum(len(found) for found in self._callbacks.values())
        return (
            f"<WebhookHandler tolerance={self.tolerance:g} callbacks={callbacks} "
            f"clients={len(self._hubs)}>"
        )

    # -- wiring -------------------------------------------------------------------------

    def attach(self, client: AsyncPlatfone | Platfone) -> None:
        """Wake ``client``'s watchers on pushed updates; poll less while events flow.

        ``client`` is an ``AsyncPlatfone`` or a sync ``Platfone``; the handler may run
        on another thread and event loop than the client's watchers.
        """
        target = _async_client(client)
        hub = hub_for(target)
        if hub not in self._hubs:
            self._hubs.append(hub)
        if self._clock is None:
            self._clock = target.clock

    def detach(self, client: AsyncPlatfone | Platfone) -> None:
        """Stop pushing updates to ``client``'s watchers."""
        hub = hub_for(_async_client(client))
        if hub in self._hubs:
            self._hubs.remove(hub)

    @overload
    def on(self, event_type: WebhookEventType | str) -> Callable[[F], F]: ...

    @overload
    def on(self, event_type: WebhookEventType | str, callback: F) -> F: ...

    def on(
        self, event_type: WebhookEventType | str, callback: F | None = None
    ) -> F | Callable[[F], F]:
        """Call ``callback(event)`` for each new event of ``event_type`` (``"*"``: all).

        The callback may be a plain function or a coroutine function; use it directly,
        ``handler.on("activation.updated", callback)``, or as a decorator,
        ``@handler.on("activation.updated")``. Callbacks run in the order added.
        """
        if not isinstance(event_type, str) or not event_type:
            raise InvalidParameterError("event_type", "must be an event type string", event_type)
        key = str(event_type.value if isinstance(event_type, WebhookEventType) else event_type)

        def add(function: F) -> F:
            if not callable(function):
                raise InvalidParameterError("callback", "must be callable", function)
            self._callbacks.setdefault(key, []).append(function)
            return function

        return add if callback is None else add(callback)

    # -- handling -----------------------------------------------------------------------

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent | None:
        """Verify, parse and dispatch one delivery; None when it repeats a recent event.

        Raises:
            WebhookVerificationError: The delivery is not signed with the secret, or
                not recently (answer 401).
            WebhookPayloadError: It is signed but not an event (answer 400).
        """
        clock = self._clock if self._clock is not None else _SYSTEM_CLOCK
        verify(body, headers, self._secrets, tolerance=self.tolerance, now=clock.time())
        event = parse_event(body)
        if not self._recent.add(event.id):
            logger.debug("webhook event %s (%s) seen before, skipped", event.id, event.type)
            return None
        try:
            self._push(event)
            await self._dispatch(event)
        except BaseException:
            self._recent.discard(event.id)  # so that the sender's retry is handled afresh
            raise
        return event

    def _push(self, event: WebhookEvent) -> None:
        for hub in list(self._hubs):
            hub.note_event()
            if isinstance(event, ActivationUpdated):
                hub.push(event.data)

    async def _dispatch(self, event: WebhookEvent) -> None:
        for callback in [*self._callbacks.get(str(event.type), ()), *self._callbacks.get("*", ())]:
            result = callback(event)
            if inspect.isawaitable(result):
                await result

    def asgi_app(self) -> ASGIApp:
        """This handler as a plain ASGI app (see :func:`webhook_app`)."""
        return webhook_app(self)


_SYSTEM_CLOCK = SystemClock()


def _async_client(client: AsyncPlatfone | Platfone) -> AsyncPlatfone:
    """The ``AsyncPlatfone`` behind ``client`` (a sync ``Platfone`` wraps one)."""
    if isinstance(client, AsyncPlatfone):
        return client
    # The sync facade's hook: __async_target__() starts (if need be) and returns the
    # AsyncPlatfone that runs on its loop thread.
    hook = getattr(client, "__async_target__", None)
    inner = hook() if callable(hook) else None
    if not isinstance(inner, AsyncPlatfone):
        raise TypeError(f"attach an AsyncPlatfone or a Platfone, not {type(client).__name__}")
    return inner


def webhook_app(handler: WebhookHandler) -> ASGIApp:
    """An ASGI 3 app that feeds every POST to ``handler`` - whatever its path.

    It answers 200 ``{"result": "success"}`` for an event handled now or before (a
    repeat), 401 when verification fails, 400 for a malformed payload, 405 for any
    method but POST, 413 for a body over a megabyte, and 500 when a callback raised
    (logged with its traceback). Mount it in Starlette/FastAPI or serve it with uvicorn.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the webhook app speaks HTTP only, not {scope['type']}")
        if scope["method"] != "POST":
            await _answer(send, 405, {"error": "only POST is allowed"}, [(b"allow", b"POST")])
            return
        body = await _read_body(receive)
        if body is None:
            await _answer(send, 413, {"error": "the body is too large for a webhook"})
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            # A repeated line (two x-signature lines) keeps every value: each is tried.
            headers[name] = f"{headers[name]} {value}" if name in headers else value
        try:
            await handler.handle(body, headers)
        except WebhookVerificationError as error:
            logger.info("webhook rejected: %s", error)
            await _answer(send, 401, {"error": str(error)})
        except WebhookPayloadError as error:
            logger.info("webhook payload rejected: %s", error)
            await _answer(send, 400, {"error": str(error)})
        except Exception:
            logger.exception("a webhook callback failed; answering 500 so it is retried")
            await _answer(send, 500, {"error": "the receiver failed to handle the event"})
        else:
            await _answer(send, 200, {"result": "success"})

    return app


async def _read_body(receive: Receive) -> bytes | None:
    """The request body; None when it exceeds the limit (the rest is read and dropped,
    up to a bound, so that the client sees the answer rather than a reset)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False) or size > _DRAIN_LIMIT:
            break
    return b"".join(chunks) if size <= _MAX_BODY else None


async def _answer(
    send: Send,
    status: int,
    document: Mapping[str, str],
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    body = json.dumps(document).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
