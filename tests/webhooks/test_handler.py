"""WebhookHandler: verify, parse, de-duplicate, dispatch; and its ASGI app's answers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from platfone_async import InvalidParameterError, WebhookVerificationError
from platfone_async.testing import VirtualClock
from platfone_async.webhooks import (
    ALL_EVENTS,
    AccountLowBalance,
    ActivationUpdated,
    UnknownWebhookEvent,
    WebhookEvent,
    WebhookHandler,
    WebhookPayloadError,
    signed_headers,
)
from tests._support import HISTORY_ACTIVATION

SECRET = "whsec-handler-secret-42"


def delivery(
    event_id: str = "evt_1",
    type: str = "activation.updated",
    data: Any = None,
    *,
    clock: VirtualClock,
    secret: str = SECRET,
) -> tuple[bytes, dict[str, str]]:
    """A signed delivery (body, headers) of one event, stamped with the clock's time."""
    document = {
        "id": event_id,
        "api_version": "1.0",
        "type": type,
        "data": HISTORY_ACTIVATION if data is None else data,
    }
    body = json.dumps(document).encode()
    headers = signed_headers(body, secret, webhook_id=event_id, timestamp=int(clock.time()))
    return body, headers


@pytest.fixture
def handler(clock: VirtualClock) -> WebhookHandler:
    return WebhookHandler(SECRET, clock=clock)


def asgi_client(handler: WebhookHandler) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=handler.asgi_app())
    return httpx.AsyncClient(transport=transport, base_url="http://receiver.test")


@pytest.mark.anyio
async def test_handle_dispatches_by_type(handler: WebhookHandler, clock: VirtualClock) -> None:
    """A callback for activation.updated gets the typed event; others are not called."""
    seen: list[WebhookEvent] = []
    handler.on("activation.updated", seen.append)
    handler.on("account.low_balance", lambda event: pytest.fail("wrong type"))
    event = await handler.handle(*delivery(clock=clock))
    assert isinstance(event, ActivationUpdated)
    assert [event] == seen


@pytest.mark.anyio
async def test_sync_async_decorator_and_catch_all_callbacks(
    handler: WebhookHandler, clock: VirtualClock
) -> None:
    """Plain and coroutine callbacks, direct or as decorators, and "*", run in order."""
    calls: list[str] = []

    @handler.on("account.low_balance")
    async def low(event: AccountLowBalance) -> None:
        calls.append(f"async {event.data.balance}")

    handler.on("account.low_balance", lambda event: calls.append("sync"))
    handler.on(ALL_EVENTS, lambda event: calls.append(f"all {event.type}"))
    await handler.handle(*delivery(type="account.low_balance", data={"balance": 42}, clock=clock))
    assert ["async 42", "sync", "all account.low_balance"] == calls
    assert low.__name__ == "low"


@pytest.mark.anyio
async def test_duplicate_delivery_is_handled_once(
    handler: WebhookHandler, clock: VirtualClock
) -> None:
    """The same event delivered twice: the callback runs once; the repeat returns None."""
    seen: list[str] = []
    handler.on(ALL_EVENTS, lambda event: seen.append(event.id))
    body, headers = delivery(clock=clock)
    first = await handler.handle(body, headers)
    clock.advance(5)
    again = await handler.handle(*delivery(clock=clock))  # re-signed later, same id
    assert first is not None
    assert None is again
    assert ["evt_1"] == seen


@pytest.mark.anyio
async def test_dedup_memory_is_bounded(clock: VirtualClock) -> None:
    """Only the last dedup_size ids are remembered: an older id counts as new again."""
    handler = WebhookHandler(SECRET, clock=clock, dedup_size=2)
    seen: list[str] = []
    handler.on(ALL_EVENTS, lambda event: seen.append(event.id))
    for event_id in ["a", "b", "b", "c", "a", "c"]:
        await handler.handle(*delivery(event_id, clock=clock))
    assert ["a", "b", "c", "a"] == seen


@pytest.mark.anyio
async def test_failing_callback_forgets_the_event(
    handler: WebhookHandler, clock: VirtualClock
) -> None:
    """A callback that raises fails the delivery; the sender's retry is handled afresh."""
    attempts: list[str] = []

    def flaky(event: WebhookEvent) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise RuntimeError("database down")

    handler.on(ALL_EVENTS, flaky)
    with pytest.raises(RuntimeError, match="database down"):
        await handler.handle(*delivery(clock=clock))
    assert await handler.handle(*delivery(clock=clock)) is not None
    assert ["evt_1", "evt_1"] == attempts


@pytest.mark.anyio
async def test_unknown_type_reaches_callbacks(handler: WebhookHandler, clock: VirtualClock) -> None:
    """An unknown event type is kept and passed to its own and to catch-all callbacks."""
    seen: list[WebhookEvent] = []
    handler.on("number.ported", seen.append)
    handler.on(ALL_EVENTS, seen.append)
    await handler.handle(*delivery(type="number.ported", data={"x": 1}, clock=clock))
    assert 2 == len(seen)
    assert isinstance(seen[0], UnknownWebhookEvent)
    assert {"x": 1} == seen[0].data


@pytest.mark.anyio
async def test_handle_raises_on_bad_deliveries(
    handler: WebhookHandler, clock: VirtualClock
) -> None:
    """A wrong secret is a verification error; a signed non-event a payload error."""
    with pytest.raises(WebhookVerificationError):
        await handler.handle(*delivery(secret="not-it", clock=clock))
    body = b"not json"
    headers = signed_headers(body, SECRET, webhook_id="m", timestamp=int(clock.time()))
    with pytest.raises(WebhookPayloadError):
        await handler.handle(body, headers)


@pytest.mark.anyio
async def test_handler_checks_time_on_its_clock(
    handler: WebhookHandler, clock: VirtualClock
) -> None:
    """The timestamp is compared with the handler's clock: 10 minutes later it is too old."""
    body, headers = delivery(clock=clock)
    clock.advance(600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        await handler.handle(body, headers)


def test_secret_never_in_repr() -> None:
    """Neither the handler's repr nor its str shows the secret."""
    handler = WebhookHandler(SECRET)
    assert SECRET not in repr(handler)
    assert SECRET not in str(handler)
    assert "<WebhookHandler tolerance=300 callbacks=0 clients=0>" == repr(handler)


@pytest.mark.parametrize(
    "kwargs",
    [{"tolerance": -1}, {"tolerance": float("nan")}, {"dedup_size": 0}, {"dedup_size": True}],
)
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    """A negative tolerance or an empty dedup memory is an InvalidParameterError."""
    with pytest.raises(InvalidParameterError):
        WebhookHandler(SECRET, **kwargs)


def test_on_refuses_non_callables() -> None:
    """handler.on(type, not_a_function) fails at once, not at the first event."""
    with pytest.raises(InvalidParameterError):
        WebhookHandler(SECRET).on("activation.updated", 42)  # type: ignore[call-overload]


# -- the ASGI app ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_asgi_answers_200_for_new_and_repeated(
    handler: WebhookHandler, clock: VirtualClock
) -> None:
    """A good delivery gets 200 {"result": "success"}; its repeat gets 200 too."""
    body, headers = delivery(clock=clock)
    async with asgi_client(handler) as http:
        first = await http.post("/hooks/platfone", content=body, headers=headers)
        again = await http.post("/", content=body, headers=headers)
    assert (200, {"result": "success"}) == (first.status_code, first.json())
    assert 200 == again.status_code


@pytest.mark.anyio
async def test_asgi_answers_401_400_405_413(handler: WebhookHandler, clock: VirtualClock) -> None:
    """Unsigned or forged 401, signed junk 400, GET 405, a body over a megabyte 413."""
    junk = b'{"id": "x"}'
    junk_headers = signed_headers(junk, SECRET, webhook_id="m", timestamp=int(clock.time()))
    forged_body, forged_headers = delivery(secret="not-the-secret", clock=clock)
    async with asgi_client(handler) as http:
        unsigned = await http.post("/", content=b"{}", headers={"x-webhook-id": "m"})
        forged = await http.post("/", content=forged_body, headers=forged_headers)
        malformed = await http.post("/", content=junk, headers=junk_headers)
        wrong_method = await http.get("/")
        huge = await http.post("/", content=b"x" * (2 << 20), headers=junk_headers)
    assert 401 == unsigned.status_code
    assert "the x-timestamp header is missing" == unsigned.json()["error"]
    assert 401 == forged.status_code
    assert "no signature in x-signature matches the body" == forged.json()["error"]
    assert 400 == malformed.status_code
    assert "the webhook event has no type string" == malformed.json()["error"]
    assert (405, "POST") == (wrong_method.status_code, wrong_method.headers["allow"])
    assert 413 == huge.status_code


@pytest.mark.anyio
async def test_asgi_answers_500_when_a_callback_fails(
    handler: WebhookHandler, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises: 500 (so the sender retries), logged without the secret."""
    handler.on("account.low_balance", lambda event: 1 / 0)
    body, headers = delivery(type="account.low_balance", data={"balance": 1}, clock=clock)
    async with asgi_client(handler) as http:
        response = await http.post("/", content=body, headers=headers)
    assert 500 == response.status_code
    assert "a webhook callback failed" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.anyio
async def test_asgi_lifespan_completes(handler: WebhookHandler) -> None:
    """The app answers the lifespan protocol, so servers that send it start cleanly."""
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await handler.asgi_app()({"type": "lifespan"}, receive, send)
    assert [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ] == sent


@pytest.mark.anyio
async def test_asgi_tries_every_repeated_signature_line(
    handler: WebhookHandler, clock: VirtualClock
) -> None:
    """A valid delivery with a second, stale x-signature line appended is accepted: each
    line is tried, not only the last."""
    body, headers = delivery(clock=clock)
    lines = [*headers.items(), ("x-signature", "v1," + "ab" * 32)]
    async with asgi_client(handler) as http:
        answer = await http.post("/", content=body, headers=lines)
    assert 200 == answer.status_code
