"""End to end in virtual time: the emulator signs and sends webhooks, a WebhookHandler
receives them in-process, and the watchers of the client it is attached to wake at once."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import anyio
import pytest

from platfone_async import Activation, AsyncPlatfone, SmsStatus
from platfone_async.testing import Offer, PlatfoneEmulator, VirtualClock, WebhookAttempt
from platfone_async.webhooks import (
    ALL_EVENTS,
    AccountLowBalance,
    ActivationReportUpdated,
    ActivationUpdated,
    LowBalance,
    UnknownWebhookEvent,
    WebhookEvent,
    WebhookHandler,
)
from platfone_async.webhooks._push import PUSH_INTERVAL_FACTOR

SECRET = "whsec-emulator-7f3a"

pytestmark = pytest.mark.emulator(
    success_rate_check=False, rate_limits=None, offers={("telegram", "uk"): [Offer(100, 0.8, 100)]}
)


@pytest.fixture
def handler() -> WebhookHandler:
    return WebhookHandler(SECRET)


@pytest.fixture
async def client(
    emulator: PlatfoneEmulator, handler: WebhookHandler, clock: VirtualClock
) -> AsyncIterator[AsyncPlatfone]:
    """A client with the handler attached; the emulator posts to the handler's app."""
    async with clock.autojump(), emulator.client(rate_limits=None, max_retries=0) as client:
        handler.attach(client)
        emulator.configure_webhooks(app=handler.asgi_app(), secret=SECRET)
        yield client


def polls(emulator: PlatfoneEmulator) -> int:
    return emulator.request_count("get_activation")


def received(handler: WebhookHandler) -> list[WebhookEvent]:
    """Subscribe a list to every event the handler passes on."""
    events: list[WebhookEvent] = []
    handler.on(ALL_EVENTS, events.append)
    return events


async def sms_after(
    emulator: PlatfoneEmulator, clock: VirtualClock, aid: str, delay: float, code: str
) -> None:
    await clock.sleep(delay)
    emulator.deliver_sms(aid, code)


@pytest.mark.anyio
async def test_pushed_sms_reaches_a_ten_minute_watcher_at_once(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, clock: VirtualClock
) -> None:
    """SMS at 90 s, poll interval 10 min: the watcher yields it within a second, 2 polls."""
    activation = await client.create_activation("telegram", "uk")
    sms_at = clock.time() + 90
    states: list[Activation] = []
    async with emulator.webhooks.running(), anyio.create_task_group() as tg:
        tg.start_soon(sms_after, emulator, clock, activation.activation_id, 90, "4242")
        async for state in client.watch_activation(activation, interval=600):
            states.append(state)
        arrived = clock.time()
    assert [SmsStatus.SMS_REQUESTED, SmsStatus.SMS_RECEIVED] == [s.sms_status for s in states]
    assert "4242" == states[-1].sms_code
    assert 0 <= arrived - sms_at < 1
    assert 2 == polls(emulator)  # the first state, and the one the push asked for


@pytest.mark.anyio
async def test_wait_for_sms_is_woken_too(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, clock: VirtualClock
) -> None:
    """wait_for_sms (with a timeout) returns as soon as the webhook arrives."""
    activation = await client.create_activation("telegram", "uk")
    async with emulator.webhooks.running(), anyio.create_task_group() as tg:
        tg.start_soon(sms_after, emulator, clock, activation.activation_id, 42, "777")
        got = await client.wait_for_sms(activation, timeout=900, interval=600)
    assert "777" == got.sms_code
    assert 42 == pytest.approx(clock.time() - activation.created_at.timestamp(), abs=1)


@pytest.mark.anyio
async def test_polls_spread_out_while_webhooks_flow(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, clock: VirtualClock
) -> None:
    """After an event arrived, a 10 s watcher polls about every 60 s until the push."""
    activation = await client.create_activation("telegram", "uk")
    emulator.webhooks.send("ping", {})
    await emulator.webhooks.deliver()
    async with emulator.webhooks.running(), anyio.create_task_group() as tg:
        tg.start_soon(sms_after, emulator, clock, activation.activation_id, 250, "1")
        states = [s async for s in client.watch_activation(activation, interval=10)]
    assert "1" == states[-1].sms_code
    times = [r.time for r in emulator.requests if r.route == "get_activation"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    slow = 10 * PUSH_INTERVAL_FACTOR
    assert [] == [gap for gap in gaps[:-1] if not 0.95 * slow <= gap <= 1.05 * slow]
    assert 6 == len(times)  # at 0, ~60, ~120, ~180, ~240, then 250 on the push


@pytest.mark.anyio
async def test_polling_is_the_fallback_when_deliveries_fail(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, clock: VirtualClock
) -> None:
    """Webhooks signed with the wrong secret are refused; the watcher polls the SMS in."""
    emulator.configure_webhooks(app=WebhookHandler("other").asgi_app(), secret=SECRET)
    activation = await client.create_activation("telegram", "uk")
    async with emulator.webhooks.running(), anyio.create_task_group() as tg:
        tg.start_soon(sms_after, emulator, clock, activation.activation_id, 35, "9")
        states = [s async for s in client.watch_activation(activation, interval=10)]
    assert "9" == states[-1].sms_code
    assert 4 <= polls(emulator) <= 5
    assert {401} == {a.status for a in emulator.webhooks.attempts}


@pytest.mark.anyio
async def test_events_for_unwatched_activations_only_reach_callbacks(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, handler: WebhookHandler
) -> None:
    """An SMS on an activation nobody watches: the callback sees it, no poll is made."""
    events = received(handler)
    activation = await client.create_activation("telegram", "uk")
    emulator.deliver_sms(activation.activation_id, "555")
    attempts = await emulator.webhooks.deliver()
    assert [(1, 200)] == [(a.attempt, a.status) for a in attempts]
    assert 1 == len(events)
    assert isinstance(events[0], ActivationUpdated)
    assert "555" == events[0].data.sms_code
    assert 0 == polls(emulator)


@pytest.mark.anyio
async def test_every_event_type_the_emulator_sends(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, handler: WebhookHandler
) -> None:
    """SMS, retry SMS, a reviewed report and a low balance each arrive typed."""
    events = received(handler)
    activation = await client.create_activation("telegram", "uk")
    aid = activation.activation_id
    emulator.deliver_sms(aid, "111")
    await client.retry_activation(aid)
    emulator.deliver_sms(aid, "222")
    await client.create_report(aid, 7, message="wrong code")
    emulator.approve_report(aid)
    emulator.set_balance(50)
    await emulator.webhooks.deliver()
    kinds = [(type(e).__name__, getattr(e.data, "sms_status", None)) for e in events]
    assert [
        ("ActivationUpdated", SmsStatus.SMS_RECEIVED),
        ("ActivationUpdated", SmsStatus.RETRY_RECEIVED),
    ] == [k for k in kinds if k[0] == "ActivationUpdated"]
    report = next(e for e in events if isinstance(e, ActivationReportUpdated))
    assert (aid, "approved") == (report.data.activation_id, report.data.report_status)
    low = next(e for e in events if isinstance(e, AccountLowBalance))
    assert LowBalance(balance=50, total=50, reserved=0) == low.data


@pytest.mark.anyio
async def test_failed_delivery_is_retried_with_backoff(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, handler: WebhookHandler, clock: VirtualClock
) -> None:
    """A receiver failing twice (500) gets the event at +1 s and +3 s; handled once."""
    failures = iter([RuntimeError("down"), RuntimeError("still down")])

    def flaky(event: WebhookEvent) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    handler.on(ALL_EVENTS, flaky)
    events = received(handler)
    start = clock.time()
    async with emulator.webhooks.running():
        emulator.webhooks.send("ping", {"n": 1})
        await clock.sleep(10)
    attempts = emulator.webhooks.attempts
    assert [(1, 500), (2, 500), (3, 200)] == [(a.attempt, a.status) for a in attempts]
    assert [0, 1, 3] == [round(a.time - start) for a in attempts]
    assert 1 == len(events)
    assert 0 == emulator.webhooks.pending


@pytest.mark.anyio
async def test_delivery_gives_up_after_max_attempts(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Against a receiver that always refuses: max_attempts tries, then it is dropped."""
    refusing = WebhookHandler("not-the-secret", clock=clock)
    emulator.configure_webhooks(app=refusing.asgi_app(), secret=SECRET, max_attempts=3, backoff=2.0)
    start = clock.time()
    async with clock.autojump(), emulator.webhooks.running():
        emulator.webhooks.send("ping", {})
        await clock.sleep(60)
    attempts: list[WebhookAttempt] = emulator.webhooks.attempts
    assert [(0, 401), (2, 401), (6, 401)] == [(round(a.time - start), a.status) for a in attempts]
    assert not any(a.delivered for a in attempts)
    assert 0 == emulator.webhooks.pending


@pytest.mark.anyio
async def test_unreachable_url_records_the_error(emulator: PlatfoneEmulator) -> None:
    """No server at the URL: the attempt has no status, an error, and a retry queued."""
    emulator.configure_webhooks("http://127.0.0.1:9/hooks", secret=SECRET, timeout=2.0)
    emulator.webhooks.send("ping", {})
    (attempt,) = await emulator.webhooks.deliver()
    assert (None, False) == (attempt.status, attempt.delivered)
    assert attempt.error is not None
    assert attempt.error.startswith("ConnectError")
    assert 1 == emulator.webhooks.pending


@pytest.mark.anyio
async def test_duplicate_fault_is_handled_once(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, handler: WebhookHandler
) -> None:
    """duplicate=True sends each event twice (both 200); callbacks see it once."""
    events = received(handler)
    emulator.webhooks.set_faults(duplicate=True)
    event_id = emulator.webhooks.send("ping", {})
    attempts = await emulator.webhooks.deliver()
    assert [(event_id, 200), (event_id, 200)] == [(a.event_id, a.status) for a in attempts]
    assert [event_id] == [e.id for e in events]


@pytest.mark.anyio
async def test_out_of_order_fault(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, handler: WebhookHandler
) -> None:
    """pause() then resume(reverse=True): held events arrive newest first."""
    events = received(handler)
    emulator.webhooks.pause()
    sent = [emulator.webhooks.send("ping", {"n": n}) for n in range(3)]
    assert [] == await emulator.webhooks.deliver()
    emulator.webhooks.resume(reverse=True)
    await emulator.webhooks.deliver()
    assert sent[::-1] == [e.id for e in events]


@pytest.mark.anyio
async def test_late_fault_delays_delivery(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, handler: WebhookHandler, clock: VirtualClock
) -> None:
    """delay=30: the running sender posts each event 30 clock seconds after it happened."""
    events = received(handler)
    emulator.webhooks.set_faults(delay=30)
    start = clock.time()
    async with emulator.webhooks.running():
        emulator.webhooks.send("ping", {})
        await clock.sleep(29)
        assert [] == events
        await clock.sleep(2)
    assert 1 == len(events)
    assert isinstance(events[0], UnknownWebhookEvent)
    assert [30.0] == [a.time - start for a in emulator.webhooks.attempts]


@pytest.mark.anyio
async def test_late_stale_push_does_not_rewind_a_watcher(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, handler: WebhookHandler, clock: VirtualClock
) -> None:
    """A first SMS's webhook arriving after a retry only wakes the watcher to re-poll:
    it yields the server's state (retryRequested), not the stale pushed one."""
    activation = await client.create_activation("telegram", "uk")
    aid = activation.activation_id
    emulator.webhooks.pause()
    emulator.deliver_sms(aid, "111")
    await client.retry_activation(aid)
    states: list[Activation] = []

    async def late_delivery() -> None:
        await clock.sleep(30)
        emulator.webhooks.resume()
        await emulator.webhooks.deliver()
        await clock.sleep(30)
        emulator.deliver_sms(aid, "222")
        await emulator.webhooks.deliver()

    async with anyio.create_task_group() as tg:
        tg.start_soon(late_delivery)
        async for state in client.watch_activation(aid, interval=600):
            states.append(state)
    assert [SmsStatus.RETRY_REQUESTED, SmsStatus.RETRY_RECEIVED] == [s.sms_status for s in states]
    assert "222" == states[-1].sms_code
    assert 3 == polls(emulator)  # first state, the stale push's re-poll, the new SMS


@pytest.mark.anyio
async def test_a_push_newer_than_the_server_polls_again_soon(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, clock: VirtualClock
) -> None:
    """The server answers older than the state pushed: re-polls 1 s apart, 3 times at most."""
    activation = await client.create_activation("telegram", "uk")
    start = clock.time()
    ahead = {**emulator.activation(activation.activation_id), "updated_at": int(start) + 100}

    async def push_then_stop(scope: anyio.CancelScope) -> None:
        await clock.sleep(20)
        emulator.webhooks.send("activation.updated", ahead)
        await emulator.webhooks.deliver()
        await clock.sleep(200)
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(push_then_stop, tg.cancel_scope)
        async for _ in client.watch_activation(activation, interval=600):
            pass
    times = [round(r.time - start) for r in emulator.requests if r.route == "get_activation"]
    assert [0, 20, 21, 22, 23] == times


def test_emulator_webhook_config_hides_the_secret(emulator: PlatfoneEmulator) -> None:
    """Neither the emulator nor its webhook sender shows the secret in a repr."""
    emulator.configure_webhooks("http://127.0.0.1:9/", secret=SECRET)
    assert SECRET not in repr(emulator.webhooks)
    assert SECRET not in repr(emulator.webhooks._targets)
    assert SECRET not in repr(emulator)


def test_configure_needs_a_target_and_a_secret(emulator: PlatfoneEmulator) -> None:
    """No url or app, or no secret, is a ValueError."""
    with pytest.raises(ValueError, match="url"):
        emulator.configure_webhooks(secret=SECRET)
    with pytest.raises(ValueError, match="secret"):
        emulator.configure_webhooks("http://127.0.0.1:9/", secret="")


@pytest.mark.anyio
async def test_a_with_options_copys_watcher_is_woken_by_the_originals_handler(
    emulator: PlatfoneEmulator, client: AsyncPlatfone, clock: VirtualClock
) -> None:
    """The push hub is the client's and its copies': a copy's 10-minute watcher yields a
    pushed SMS at once, with no poll in between."""
    copy = client.with_options(timeout=5.0)
    activation = await copy.create_activation("telegram", "uk")
    sms_at = clock.time() + 90
    async with emulator.webhooks.running(), anyio.create_task_group() as tg:
        tg.start_soon(sms_after, emulator, clock, activation.activation_id, 90, "5151")
        states = [s async for s in copy.watch_activation(activation, interval=600)]
        arrived = clock.time()
    assert ("5151", 2) == (states[-1].sms_code, polls(emulator))
    assert 0 <= arrived - sms_at < 1
