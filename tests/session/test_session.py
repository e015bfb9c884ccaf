"""The activation() session: ordering within a ceiling, and settling whatever ends the block."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from typing import Any

import anyio
import httpx
import pytest

from platfone_async import (
    ActivationEndedError,
    ActivationSession,
    ActivationStatus,
    ActiveActivationsLimitError,
    AsyncPlatfone,
    BillingStatus,
    InvalidParameterError,
    MaxPriceExceededError,
    NotFoundError,
    SessionOutcome,
    WaitTimeoutError,
)
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, SmsPolicy, VirtualClock
from tests._support import AheadClock

CANCEL_AFTER = 120

pytestmark = pytest.mark.emulator(
    balance=100_000,
    success_rate_check=False,
    offers={
        ("telegram", "uk"): [Offer(100, 0.8, 1_000)],
        ("google", "uk"): [Offer(150, 0.8, 1_000)],
    },
)


class Boom(Exception):
    """What the code inside a block raises."""


def client_of(emulator: PlatfoneEmulator) -> AsyncPlatfone:
    return emulator.client(rate_limits=None, max_retries=0)


def server_status(emulator: PlatfoneEmulator, session: ActivationSession) -> str:
    return str(emulator.activation(session.activation.activation_id)["activation_status"])


@pytest.mark.anyio
async def test_normal_exit_after_the_sms_finalizes(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A block that got its SMS and ends normally leaves the activation finalized."""
    emulator.set_sms_policy(SmsPolicy(delay=30))
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        while_open = session.outcome
        sms = await session.wait_for_sms()
    assert None is while_open
    assert sms.sms_code == session.activation.sms_code
    assert SessionOutcome.FINALIZED == session.outcome
    assert "finalized" == server_status(emulator, session)
    assert 1 == emulator.request_count("finalize_activation")


@pytest.mark.anyio
async def test_an_exception_inside_cancels_and_propagates_unchanged(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """An error in the block: the number is cancelled once allowed, the error re-raised as is."""
    error = Boom("inside the block")
    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(Boom) as info:
            async with client.activation("telegram", "uk") as session:
                raise error
    assert error is info.value
    assert SessionOutcome.CANCELED == session.outcome
    assert "canceled" == server_status(emulator, session)
    cancelable_after = session.activation.cancelable_after
    assert cancelable_after is not None
    assert cancelable_after.timestamp() <= emulator.requests[-1].time


@pytest.mark.anyio
@pytest.mark.parametrize("ahead", [0.0, 0.2, 0.5])
async def test_a_client_clock_a_little_ahead_still_cancels(
    emulator: PlatfoneEmulator, clock: VirtualClock, ahead: float
) -> None:
    """With the client's clock up to half a second ahead of the server's, leaving the
    block still cancels the number: the cancel waits a margin past cancelable_after
    (a cancel at exactly cancelable_after by the client's clock is refused by the
    server), and not much longer than that margin."""
    async with clock.autojump():
        client = emulator.client(clock=AheadClock(clock, ahead), rate_limits=None, max_retries=0)
        async with client, client.activation("telegram", "uk") as session:
            pass
    assert SessionOutcome.CANCELED == session.outcome
    assert "canceled" == server_status(emulator, session)
    cancels = [r.time for r in emulator.requests if r.route == "cancel_activation"]
    cancelable_after = session.activation.cancelable_after
    assert cancelable_after is not None
    assert 1 == len(cancels)
    assert cancelable_after.timestamp() < cancels[0] <= cancelable_after.timestamp() + 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cancel_after", "outcome", "cancels"),
    [
        (1_199, SessionOutcome.CANCELED, 1),  # the margin would reach expire_at: cancel at once
        (1_200, SessionOutcome.LEFT_TO_EXPIRE, 0),  # cancelable only as it expires: never
    ],
)
async def test_a_cancel_window_closing_at_expiry_is_used_or_left(
    emulator: PlatfoneEmulator,
    clock: VirtualClock,
    cancel_after: int,
    outcome: SessionOutcome,
    cancels: int,
) -> None:
    """A number cancelable a second before it expires (20 min) is cancelled right at
    cancelable_after, since the margin would take the cancel past expiry; one cancelable
    only when it expires is left to expire, and no cancel is sent."""
    offer = Offer(100, 0.8, 10, cancel_after=cancel_after)
    emulator.catalog.set_offers("telegram", "uk", [offer])
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        pass
    assert outcome == session.outcome
    assert cancels == emulator.request_count("cancel_activation")
    expected = "canceled" if cancels else "active"
    assert expected == server_status(emulator, session)


@pytest.mark.anyio
async def test_cancel_inside_the_block_shows_the_number_cancelled(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """session.cancel() (once cancelable_after has passed) returns and keeps the state
    canceled / released without another request, and the block ends CANCELED with
    nothing more sent."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        allowed = session.activation.cancelable_after
        assert allowed is not None
        await clock.sleep(allowed.timestamp() + 1 - clock.time())
        reads = emulator.request_count("get_activation")
        returned = await session.cancel()
        after = emulator.request_count("get_activation")
    seen = (returned.activation_status, returned.billing_status)
    assert (ActivationStatus.CANCELED, BillingStatus.RELEASED) == seen
    assert returned == session.activation
    assert reads == after
    assert SessionOutcome.CANCELED == session.outcome
    assert 1 == emulator.request_count("cancel_activation")
    assert "canceled" == server_status(emulator, session)


@pytest.mark.anyio
async def test_task_cancellation_cancels_the_number(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Cancelling the task holding the block still cancels the activation (shielded)."""
    sessions: list[ActivationSession] = []

    async def hold(client: AsyncPlatfone) -> None:
        async with client.activation("telegram", "uk") as session:
            sessions.append(session)
            await session.wait_for_sms()

    async with clock.autojump(), client_of(emulator) as client, anyio.create_task_group() as tg:
        tg.start_soon(hold, client)
        await clock.sleep(30)
        tg.cancel_scope.cancel()
    assert SessionOutcome.CANCELED == sessions[0].outcome
    assert "canceled" == server_status(emulator, sessions[0])


@pytest.mark.anyio
async def test_a_cancellation_during_the_order_still_settles_the_number(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Cancelled while the order is in flight: the order completes, then it is cancelled."""
    emulator.inject_fault("create_activation", Fault(delay=5))
    entered: list[bool] = []

    async def hold(client: AsyncPlatfone) -> None:
        async with client.activation("telegram", "uk"):
            entered.append(True)

    async with clock.autojump(), client_of(emulator) as client, anyio.create_task_group() as tg:
        tg.start_soon(hold, client)
        await clock.sleep(1)
        tg.cancel_scope.cancel()
    assert [] == entered
    assert ["canceled"] == [a["activation_status"] for a in emulator.activations()]


@pytest.mark.anyio
async def test_an_sms_during_the_wait_to_cancel_finalizes_instead(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """An SMS that arrives while leaving waits for cancelable_after: finalize, not cancel."""
    emulator.set_sms_policy(SmsPolicy(delay=60))
    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(Boom):
            async with client.activation("telegram", "uk") as session:
                raise Boom
    assert SessionOutcome.FINALIZED == session.outcome
    assert "finalized" == server_status(emulator, session)


@pytest.mark.anyio
async def test_settling_inside_the_block_is_not_repeated(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A session finalized inside the block reports it, and is not finalized twice."""
    emulator.set_sms_policy(SmsPolicy(delay=10))
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        await session.wait_for_sms()
        await session.finalize()
        polls = emulator.request_count("get_activation")
    assert SessionOutcome.FINALIZED == session.outcome
    assert 1 == emulator.request_count("finalize_activation")
    assert polls == emulator.request_count("get_activation")


@pytest.mark.anyio
async def test_an_activation_that_expired_inside_is_already_ended(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """An activation that expired before the block ended is reported, not touched."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        await clock.sleep(1_300)
    assert SessionOutcome.ALREADY_ENDED == session.outcome
    assert "expired" == str(session.activation.activation_status)
    assert 0 == emulator.request_count("cancel_activation")


@pytest.mark.anyio
async def test_a_number_that_cannot_be_cancelled_is_left_to_expire(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """cancelable_after null and no SMS: nothing to do but let it expire."""
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 10, cancel_after=None)])
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        pass
    assert SessionOutcome.LEFT_TO_EXPIRE == session.outcome
    assert "active" == server_status(emulator, session)
    assert 0 == emulator.request_count("cancel_activation")


@pytest.mark.anyio
async def test_a_failing_cleanup_never_hides_the_original_error(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The block's error propagates even when settling fails; without one, that fails."""
    sessions: list[ActivationSession] = []

    async def hold(client: AsyncPlatfone, error: Exception | None) -> None:
        async with client.activation("telegram", "uk") as session:
            sessions.append(session)
            emulator.inject_fault("get_activation", Fault(status=404))
            if error is not None:
                raise error

    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(Boom):
            await hold(client, Boom())
        with pytest.raises(NotFoundError):
            await hold(client, None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    first, second = sessions
    assert SessionOutcome.LEFT_TO_EXPIRE == first.outcome
    assert SessionOutcome.LEFT_TO_EXPIRE == second.outcome
    expected = (
        f"activation {first.activation.activation_id}: could not settle it after Boom (left "
        "to expire): NotFoundError: 404 InjectedFault: fault injected by a test"
    )
    assert [expected] == [m for m in warnings if "could not settle" in m]


def recording_client(
    emulator: PlatfoneEmulator, clock: VirtualClock, sent: list[dict[str, Any]]
) -> tuple[AsyncPlatfone, list[dict[str, Any]]]:
    """A client whose POST /activation bodies and 409 answers are recorded."""
    conflicts: list[dict[str, Any]] = []

    async def on_request(request: httpx.Request) -> None:
        if request.method == "POST":
            sent.append(json.loads(request.content))

    async def on_response(response: httpx.Response) -> None:
        if response.status_code == 409:
            conflicts.append(json.loads(await response.aread()))

    http = emulator.http_client(event_hooks={"request": [on_request], "response": [on_response]})
    client = AsyncPlatfone(
        emulator.api_key,
        base_url=emulator.base_url,
        http_client=http,
        clock=clock,
        rate_limits=None,
    )
    return client, conflicts


@pytest.mark.anyio
async def test_a_409_within_the_ceiling_orders_again_with_its_order_id(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """max_price 100 draws a 409 at 150; with a ceiling of 200 it re-orders at 150 + order_id."""
    sent: list[dict[str, Any]] = []
    client, conflicts = recording_client(emulator, clock, sent)
    async with (
        clock.autojump(),
        client,
        client.activation("google", "uk", max_price=100, price_ceiling=200) as session,
    ):
        pass
    order_id = conflicts[0]["orderId"]
    assert [
        {"service_id": "google", "country_id": "uk", "max_price": 100},
        {"service_id": "google", "country_id": "uk", "max_price": 150, "order_id": order_id},
    ] == sent
    assert 150 == session.activation.price
    assert 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_a_409_above_the_ceiling_raises_after_one_order(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A suggested price above the ceiling is raised; the ceiling was the only max_price sent."""
    sent: list[dict[str, Any]] = []
    client, _ = recording_client(emulator, clock, sent)
    async with client:
        with pytest.raises(MaxPriceExceededError) as info:
            async with client.activation("google", "uk", price_ceiling=120):
                pass
    assert 150 == info.value.suggested_price
    assert [{"service_id": "google", "country_id": "uk", "max_price": 120}] == sent
    assert 0 == emulator.orders_placed()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("max_price", "price_ceiling"), [(None, 0), (None, 10_001), (200, 100), (0, None)]
)
async def test_prices_are_checked_before_any_order(
    emulator: PlatfoneEmulator, max_price: int | None, price_ceiling: int | None
) -> None:
    """price_ceiling is 1-10000 and max_price may not exceed it."""
    async with client_of(emulator) as client:
        with pytest.raises(InvalidParameterError):
            async with client.activation(
                "telegram", "uk", max_price=max_price, price_ceiling=price_ceiling
            ):
                pass
    assert 0 == emulator.request_count()


@pytest.mark.anyio
async def test_a_hundred_concurrent_sessions_all_end_settled(clock: VirtualClock) -> None:
    """100 sessions at once (SMS for most): the client queues them for the 20 slots; each
    ends finalized or cancelled, and the server never answers a 429."""
    emulator = PlatfoneEmulator(clock=clock, balance=1_000_000)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.8, 1_000)])
    emulator.set_sms_policy(SmsPolicy(delay=(5, 60), probability=0.7))
    # The server's 20-active limit stays on: a 21st active activation would be a 429.
    outcomes: list[SessionOutcome | None] = []

    async def one(client: AsyncPlatfone) -> None:
        async with client.activation("telegram", "uk") as session:
            with contextlib.suppress(WaitTimeoutError):
                await session.wait_for_sms(timeout=90)
        outcomes.append(session.outcome)

    async with clock.autojump(), client_of(emulator) as client, anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(one, client)
    assert 100 == len(outcomes)
    assert {SessionOutcome.FINALIZED, SessionOutcome.CANCELED} == set(outcomes)
    assert {"finalized", "canceled"} == {a["activation_status"] for a in emulator.activations()}
    assert 0 == sum(1 for r in emulator.requests if r.status == 429)


@pytest.mark.anyio
@pytest.mark.parametrize("wait_for_slot", [True, False])
async def test_the_session_says_whether_its_order_waited_for_a_slot(
    emulator: PlatfoneEmulator, clock: VirtualClock, wait_for_slot: bool
) -> None:
    """session.wait_for_slot is what activation() was given (True by default)."""
    options: dict[str, Any] = {} if wait_for_slot else {"wait_for_slot": False}
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk", **options) as session,
    ):
        pass
    assert wait_for_slot is session.wait_for_slot


def _poll_gaps(emulator: PlatfoneEmulator) -> list[float]:
    times = [r.time for r in emulator.requests if r.route == "get_activation"]
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.anyio
@pytest.mark.parametrize("interval", [None, 4.0])
async def test_waits_and_settling_poll_at_the_interval_asked_or_every_10_s(
    emulator: PlatfoneEmulator,
    clock: VirtualClock,
    capsys: pytest.CaptureFixture[str],
    interval: float | None,
) -> None:
    """wait_for_sms polls every 10 s by default (and shows nothing), or at the interval
    given; settling keeps polling at the same pace while it waits to cancel."""
    options: dict[str, Any] = {} if interval is None else {"interval": interval}
    pace = 10.0 if interval is None else interval
    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(WaitTimeoutError):
            async with client.activation("telegram", "uk") as session:
                await session.wait_for_sms(timeout=30, **options)
    times = [r.time for r in emulator.requests if r.route == "get_activation"]
    timed_out = session.activation.created_at.timestamp() + 30
    waited = [b - a for a, b in itertools.pairwise(t for t in times if t <= timed_out)]
    settling = [b - a for a, b in itertools.pairwise(t for t in times if t > timed_out)]
    for gaps in (waited, settling):
        assert len(gaps) >= 2
        assert all(pace * 0.94 <= gap <= pace * 1.06 for gap in gaps[:-1]), gaps
    assert SessionOutcome.CANCELED == session.outcome
    assert "" == capsys.readouterr().err


@pytest.mark.anyio
async def test_settling_a_session_that_never_waited_polls_every_10_s(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A block that never polled: settling watches every 10 s until it cancels."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk"),
    ):
        pass
    gaps = _poll_gaps(emulator)
    assert len(gaps) >= 10
    assert all(9.4 <= gap <= 10.6 for gap in gaps[:-1]), gaps


@pytest.mark.anyio
async def test_wait_for_sms_reports_each_state_to_a_progress_callable(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """progress=callable gets the states the wait saw, the SMS last."""
    emulator.set_sms_policy(SmsPolicy(delay=25))
    seen: list[str] = []
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        await session.wait_for_sms(progress=lambda state: seen.append(str(state.sms_status)))
    assert ["smsRequested", "smsReceived"] == seen


@pytest.mark.anyio
async def test_a_wait_that_ends_with_the_number_keeps_its_last_state(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """The number expired during the wait: ActivationEndedError, and session.activation
    shows it expired at once (inside the block)."""
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 10, cancel_after=None)])
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        with pytest.raises(ActivationEndedError):
            await session.wait_for_sms()
        inside = session.activation.activation_status
    assert ActivationStatus.EXPIRED == inside
    assert SessionOutcome.ALREADY_ENDED == session.outcome


@pytest.mark.anyio
async def test_the_session_shows_what_settling_learns_while_it_runs(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """While leaving waits and its finalize keeps failing, session.activation already
    holds the late SMS; the outcome comes once settling ends."""
    emulator.set_sms_policy(SmsPolicy(delay=25))
    emulator.inject_fault("finalize_activation", Fault(status=503), times=5)
    seen: list[tuple[str | None, SessionOutcome | None]] = []
    sessions: list[ActivationSession] = []

    async def hold(client: AsyncPlatfone) -> None:
        with contextlib.suppress(Boom):
            async with client.activation("telegram", "uk") as session:
                sessions.append(session)
                raise Boom

    async def look() -> None:
        await clock.sleep(38)  # the SMS seen by ~31 s, the 6th finalize due at ~62 s
        seen.append((sessions[0].activation.sms_code, sessions[0].outcome))

    async with clock.autojump(), client_of(emulator) as client, anyio.create_task_group() as tg:
        tg.start_soon(hold, client)
        tg.start_soon(look)
    code = emulator.activations()[0]["sms_code"]
    assert [(code, None)] == seen
    assert SessionOutcome.FINALIZED == sessions[0].outcome


@pytest.mark.anyio
async def test_a_settled_session_is_logged_at_debug(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Not interrupted: the outcome is a DEBUG line naming the activation."""
    with caplog.at_level(logging.DEBUG, logger="platfone_async"):
        async with (
            clock.autojump(),
            client_of(emulator) as client,
            client.activation("telegram", "uk") as session,
        ):
            pass
    line = f"activation {session.activation.activation_id}: canceled"
    assert [line] == [r.getMessage() for r in caplog.records if r.getMessage() == line]
    assert logging.DEBUG == next(r.levelno for r in caplog.records if r.getMessage() == line)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_native_cancel_of_the_task_cuts_settling_short(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio only (trio's second Ctrl-C is a KeyboardInterrupt, tested in a process):
    the task itself cancelled while settling waits to cancel the number - it stops at
    once, leaves the number, LEFT_TO_EXPIRE, and says so."""
    import asyncio

    sessions: list[ActivationSession] = []

    async def hold(client: AsyncPlatfone) -> None:
        async with client.activation("telegram", "uk") as session:
            sessions.append(session)

    async with clock.autojump(), client_of(emulator) as client:
        task = asyncio.ensure_future(hold(client))
        await clock.sleep(30)  # settling waits for cancelable_after, 2 min away
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stopped = clock.time()
    (session,) = sessions
    assert SessionOutcome.LEFT_TO_EXPIRE == session.outcome
    assert stopped - session.activation.created_at.timestamp() < 35
    assert "active" == server_status(emulator, session)
    left = [r.getMessage() for r in caplog.records if r.getMessage().startswith("left +")]
    assert 1 == len(left)
    assert left[0].endswith("; its reserved price is released then")


@pytest.mark.anyio
async def test_a_session_that_may_not_wait_for_a_slot_fails_at_once(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """wait_for_slot=False with every slot taken: ActiveActivationsLimitError at once,
    nothing ordered."""
    async with (
        clock.autojump(),
        emulator.client(rate_limits=None, max_active_activations=1) as client,
        client.activation("telegram", "uk"),
    ):
        with pytest.raises(ActiveActivationsLimitError):
            async with client.activation("telegram", "uk", wait_for_slot=False):
                pass
        assert 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_the_sessions_own_calls_keep_its_state(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """repr, refresh, watch, retry and report inside the block: each keeps
    session.activation the latest state, and the repr says open, then the outcome."""
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 10, retriable=True)])
    emulator.set_sms_policy(SmsPolicy(delay=15))
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        aid = session.activation.activation_id
        opened = repr(session)
        watched = [str(s.sms_status) async for s in session.watch(interval=5)]
        after_watch = session.activation.sms_status
        retried = await session.retry()
        refreshed = await session.refresh()
        reasons = await client.get_report_reasons(session.activation)
        reason = next(r for r in reasons if not r.evidence_required)
        result = await session.report(reason.reason_id, message="the code was wrong")
    assert f"<ActivationSession {aid} smsRequested/active open>" == opened
    assert ["smsRequested", "smsReceived"] == watched
    assert "smsReceived" == after_watch
    assert ("retryRequested", "retryRequested") == (retried.sms_status, refreshed.sms_status)
    assert result is not None
    assert emulator.report(aid) is not None
    assert f"<ActivationSession {aid} retryRequested/finalized outcome=finalized>" == repr(session)
