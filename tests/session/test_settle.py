"""Settling never gives up early, never says what is not so: late codes, failing
finalizes and cancels, conflicts, the deadline, and an interruption of the settling."""

from __future__ import annotations

import contextlib
import itertools
import logging
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from platfone_async import (
    Activation,
    ActivationSession,
    AsyncPlatfone,
    AuthenticationError,
    InvalidParameterError,
    SessionOutcome,
    SQLiteBackend,
    WaitTimeoutError,
)
from platfone_async._progress import local_time
from platfone_async._settle import SETTLE_MARGIN, describe_left, settle
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, SmsPolicy, VirtualClock
from platfone_async.webhooks import WebhookHandler
from tests._support import ACTIVATION, AID, AheadClock, Server, json_response

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.emulator(
        balance=100_000,
        success_rate_check=False,
        rate_limits=None,
        offers={("telegram", "uk"): [Offer(100, 0.8, 1_000, cancel_after=120)]},
    ),
]

#: The server's answer while it is down for a while.
DOWN = Fault(status=503)


def client_of(emulator: PlatfoneEmulator, **kwargs: Any) -> AsyncPlatfone:
    return emulator.client(rate_limits=None, max_retries=0, **kwargs)


def server_state(emulator: PlatfoneEmulator, activation: Activation) -> dict[str, Any]:
    return emulator.activation(activation.activation_id)


def server_outcome(emulator: PlatfoneEmulator, activation: Activation) -> SessionOutcome:
    """The outcome the server's state calls for (an ended number we did not end aside)."""
    status = server_state(emulator, activation)["activation_status"]
    return {
        "finalized": SessionOutcome.FINALIZED,
        "canceled": SessionOutcome.CANCELED,
        "active": SessionOutcome.LEFT_TO_EXPIRE,
    }.get(status, SessionOutcome.ALREADY_ENDED)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_late_sms_during_the_wait_to_cancel_reaches_everyone(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """SMS at 40 s, the block's wait gave up at 20 s: while leaving waits for the cancel
    it keeps polling, finalizes, and the code reaches session.activation, a WARNING
    naming the number, and on_late_sms; WaitTimeoutError carries the last state seen."""
    emulator.set_sms_policy(SmsPolicy(delay=40))
    late: list[Activation] = []
    sessions: list[ActivationSession] = []

    async def hold(client: AsyncPlatfone) -> None:
        async with client.activation("telegram", "uk") as session:
            sessions.append(session)
            await session.wait_for_sms(timeout=20, interval=5)

    async with clock.autojump(), client_of(emulator, on_late_sms=late.append) as client:
        with pytest.raises(WaitTimeoutError) as info:
            await hold(client)
        ended = clock.time()
    (session,) = sessions
    code = server_state(emulator, session.activation)["sms_code"]
    assert info.value.activation is not None
    assert "smsRequested" == info.value.activation.sms_status
    assert SessionOutcome.FINALIZED == session.outcome
    assert code == session.activation.sms_code
    assert "finalized" == server_state(emulator, session.activation)["activation_status"]
    assert [code] == [a.sms_code for a in late]
    phone = f"+{session.activation.phone}"
    assert f"a code arrived late for {phone}: {code} (billed)" in warnings_of(caplog)
    assert ended - session.activation.created_at.timestamp() < 50  # not the 2 minutes
    assert 0 == emulator.request_count("cancel_activation")


async def test_finalize_failing_six_times_then_succeeding_is_finalized(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """The finalize is retried with backoff through six failures; the outcome is the
    server's, and no read is spent on a state already known (a billed SMS)."""
    emulator.set_sms_policy(SmsPolicy(delay=10))
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        await session.wait_for_sms()
        emulator.inject_fault("finalize_activation", DOWN, times=6)
        reads = emulator.request_count("get_activation")
    assert SessionOutcome.FINALIZED == session.outcome
    assert server_outcome(emulator, session.activation) == session.outcome
    assert 7 == emulator.request_count("finalize_activation")
    assert reads == emulator.request_count("get_activation")


async def test_reads_failing_six_times_still_end_cancelled(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """No SMS, every poll of the wait for cancelable_after fails (six in a row): the
    cancel is still sent when allowed, and the number ends cancelled."""
    sessions: list[ActivationSession] = []

    async def hold(client: AsyncPlatfone) -> None:
        async with client.activation("telegram", "uk") as session:
            sessions.append(session)
            emulator.inject_fault("get_activation", DOWN, times=6)
            raise RuntimeError("the caller's own failure")

    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(RuntimeError):
            await hold(client)
    (session,) = sessions
    assert SessionOutcome.CANCELED == session.outcome
    assert server_outcome(emulator, session.activation) == session.outcome
    assert 6 <= emulator.request_count("get_activation")


async def test_a_cancel_failing_many_times_is_retried_until_it_lands(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Ten failed cancels in a row, backing off (capped) - still cancelled, within the
    number's life."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        emulator.inject_fault("cancel_activation", Fault(drop=True), times=10)
    ended = clock.time()
    assert SessionOutcome.CANCELED == session.outcome
    assert server_outcome(emulator, session.activation) == session.outcome
    assert 11 == emulator.request_count("cancel_activation")
    assert ended < session.activation.expire_at.timestamp()


async def test_a_cancel_whose_answer_was_lost_counts_as_ours(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """The cancel happened but its answer was lost: the retry meets a 409, the state
    read then shows it cancelled - by us (CANCELED, not ALREADY_ENDED)."""
    lost = Fault(status=502, after_processing=True)
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        emulator.inject_fault("cancel_activation", lost)
    assert SessionOutcome.CANCELED == session.outcome
    assert server_outcome(emulator, session.activation) == session.outcome
    assert 2 == emulator.request_count("cancel_activation")


async def test_a_refused_cancel_is_tried_again_after_a_pause_not_hammered(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A client clock 6 s fast: the server refuses the first cancels as too early. Each
    409 is judged by the state (still cancellable later), and the next try waits a
    growing pause: a handful of cancels, then CANCELED."""
    async with clock.autojump():
        client = client_of(emulator, clock=AheadClock(clock, 6.0))
        async with client, client.activation("telegram", "uk") as session:
            pass
    assert SessionOutcome.CANCELED == session.outcome
    assert server_outcome(emulator, session.activation) == session.outcome
    assert 2 <= emulator.request_count("cancel_activation") <= 5


async def test_an_unseen_sms_on_a_number_that_cannot_be_cancelled_is_found(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """cancelable_after null: before leaving the number to expire, settling looks once
    more - the SMS that came meanwhile is finalized, its code delivered, not lost."""
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 10, cancel_after=None)])
    emulator.set_sms_policy(SmsPolicy(delay=5))
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        await clock.sleep(30)
    assert SessionOutcome.FINALIZED == session.outcome
    assert server_outcome(emulator, session.activation) == session.outcome
    assert session.activation.sms_code
    assert any(m.startswith("a code arrived late for +") for m in warnings_of(caplog))


async def test_settling_that_fails_until_expiry_gives_up_and_says_so(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every cancel and read fails: settling ends a margin after expire_at, with a
    WARNING saying the price is released then - not an error out of a clean block."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "uk") as session,
    ):
        emulator.inject_fault("cancel_activation", DOWN, times=10_000)
        emulator.inject_fault("get_activation", DOWN, times=10_000)
    ended = clock.time()
    expire_at = session.activation.expire_at.timestamp()
    assert SessionOutcome.LEFT_TO_EXPIRE == session.outcome
    assert expire_at <= ended <= expire_at + SETTLE_MARGIN
    expires = local_time(expire_at)
    phone = f"+{session.activation.phone}"
    said = (
        f"could not settle {phone} before it expired at {expires}; "
        "its reserved price is released then"
    )
    assert [said] == [m for m in warnings_of(caplog) if m.startswith("could not settle")]


async def test_a_failure_that_is_not_transient_ends_settling_at_once(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A refused key is not tried again for twenty minutes: the error is raised."""
    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(AuthenticationError):
            async with client.activation("telegram", "uk") as session:
                emulator.inject_fault("get_activation", Fault(status=401))
        ended = clock.time()
    assert SessionOutcome.LEFT_TO_EXPIRE == session.outcome
    assert ended - session.activation.created_at.timestamp() < 5


async def test_a_failing_on_late_sms_does_not_stop_the_settling(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The callback raises: it is logged, and the number is finalized all the same."""

    def broken(activation: Activation) -> None:
        raise ValueError("the app's bug")

    emulator.set_sms_policy(SmsPolicy(delay=30))
    async with (
        clock.autojump(),
        client_of(emulator, on_late_sms=broken) as client,
        client.activation("telegram", "uk") as session,
    ):
        pass
    assert SessionOutcome.FINALIZED == session.outcome
    assert any(m.startswith("on_late_sms failed for +") for m in warnings_of(caplog))


@pytest.mark.parametrize("callback", [42, "print"])
async def test_on_late_sms_must_be_a_function(emulator: PlatfoneEmulator, callback: object) -> None:
    """Not callable: refused at construction."""
    with pytest.raises(InvalidParameterError, match="on_late_sms"):
        emulator.client(on_late_sms=callback)


async def test_on_late_sms_may_not_be_a_coroutine_function(emulator: PlatfoneEmulator) -> None:
    """An async callback would never run: refused at construction."""

    async def callback(activation: Activation) -> None:
        pass

    with pytest.raises(InvalidParameterError, match="plain function"):
        emulator.client(on_late_sms=callback)


async def test_a_pushed_sms_wakes_the_wait_to_cancel_at_once(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Polling every 10 min while it waits to cancel, a webhook pushing the SMS at
    40 s wakes settling at once: finalized within a second of the SMS."""
    handler = WebhookHandler("whsec-settle")

    async def deliver(session: ActivationSession) -> None:
        await clock.sleep(40)
        emulator.deliver_sms(session.activation.activation_id, "5151")

    async with clock.autojump(), client_of(emulator) as client:
        handler.attach(client)
        emulator.configure_webhooks(app=handler.asgi_app(), secret="whsec-settle")
        async with (
            emulator.webhooks.running(),
            anyio.create_task_group() as tg,
            client.activation("telegram", "uk") as session,
        ):
            with contextlib.suppress(WaitTimeoutError):
                await session.wait_for_sms(timeout=1, interval=600)
            sms_at = clock.time() + 40
            tg.start_soon(deliver, session)
    finalized = [r.time for r in emulator.requests if r.route == "finalize_activation"]
    assert SessionOutcome.FINALIZED == session.outcome
    assert "5151" == session.activation.sms_code
    assert 0 <= finalized[0] - sms_at < 1
    assert 3 == emulator.request_count("get_activation")  # the wait's, settling's, the push's


async def _settle_cancelled_after(
    client: AsyncPlatfone, clock: VirtualClock, activation: Activation, after: float
) -> None:
    """Run settle(), cancelling it ``after`` seconds in (no shield around it)."""
    with anyio.CancelScope() as scope:

        async def stop() -> None:
            await clock.sleep(after)
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop)
            await settle(client, activation)
            tg.cancel_scope.cancel()


async def test_a_cancelled_settling_ends_at_once_saying_the_sms_was_billed(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled while the finalize keeps failing: it ends at once, and what it says is
    what the server shows - billed, with the code - never "released"."""
    emulator.set_sms_policy(SmsPolicy(delay=5))
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        state = await client.wait_for_sms(activation)
        emulator.inject_fault("finalize_activation", DOWN, times=10_000)
        await _settle_cancelled_after(client, clock, state, 20)
    (said,) = [m for m in warnings_of(caplog) if m.startswith("left ")]
    assert "billed" == server_state(emulator, state)["billing_status"]
    assert said.startswith(f"left +{state.phone} unfinalized until ")
    assert said.endswith(f"its SMS came and was billed (code {state.sms_code})")
    assert "released" not in said


async def test_a_cancelled_wait_to_cancel_says_the_price_is_released_then(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled while waiting for cancelable_after with no SMS: "released then"."""
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        await _settle_cancelled_after(client, clock, activation, 25)
    (notice,) = [m for m in warnings_of(caplog) if m.startswith("cancelling ")]
    (said,) = [m for m in warnings_of(caplog) if m.startswith("left ")]
    assert "; Ctrl-C to leave it to expire - " in notice  # not interrupted: no "again"
    assert said.startswith(f"left +{activation.phone} to expire at ")
    assert said.endswith("; its reserved price is released then")
    assert "active" == server_state(emulator, activation)["activation_status"]
    polls = [r.time - activation.created_at.timestamp() for r in emulator.requests[1:]]
    assert 3 == len(polls)  # at once, then every 10 s (the default)
    assert polls[0] < 0.1
    assert all(9.5 <= b - a <= 10.5 for a, b in itertools.pairwise(polls)), polls


async def test_a_number_left_in_a_durable_journal_says_how_to_pick_it_up(
    emulator: PlatfoneEmulator,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Cut short with a SQLite store, the number stays journaled: the words say that
    recover() or `platfone recover` settles it (the memory store's words do not)."""
    backend = SQLiteBackend(tmp_path / "state.db")
    async with clock.autojump(), client_of(emulator, limits_backend=backend) as client:
        activation = await client.create_activation("telegram", "uk")
        await _settle_cancelled_after(client, clock, activation, 25)
        journaled = [o.activation.activation_id for o in await client.open_activations()]
    (said,) = [m for m in warnings_of(caplog) if m.startswith("left ")]
    assert said.endswith(
        "; its reserved price is released then; it stays journaled: recover() or"
        " `platfone recover` settles it once this process has ended"
    ), said
    assert [activation.activation_id] == journaled


def _state(activation: Activation, **changes: Any) -> Activation:
    return attrs.evolve(activation, **changes)


async def test_describe_left_speaks_as_the_server_shows(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Each state is described by what it shows: ended, billed, a cancel under way."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
    phone = f"+{activation.phone}"
    ended = _state(activation, activation_status="expired")
    assert f"stopped settling {phone}: it is expired" == describe_left(ended)
    cancelling = describe_left(activation, SessionOutcome.CANCELED)
    assert " (a cancel was under way); its reserved price is released then" in cancelling
    billed = _state(activation, billing_status="billed", sms_status="smsReceived")
    assert describe_left(billed).endswith("its price was billed")
    assert describe_left(billed, journaled=True).endswith(
        "its price was billed; it stays journaled: recover() or `platfone recover` settles it"
        " once this process has ended"
    )
    assert describe_left(ended, journaled=True) == describe_left(ended)


async def test_a_code_no_one_saw_is_delivered_when_settling_starts(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """code_seen=False (a recovered number): a code already in the state given is
    delivered as late at once - WARNING and callback - then the number is finalized."""
    emulator.set_sms_policy(SmsPolicy(delay=5))
    late: list[Activation] = []
    async with clock.autojump(), client_of(emulator, on_late_sms=late.append) as client:
        activation = await client.create_activation("telegram", "uk")
        state = await client.wait_for_sms(activation)
        seen = await settle(client, state)
        assert [] == late
        other = await client.create_activation("telegram", "uk")
        unseen = await settle(client, await client.wait_for_sms(other), code_seen=False)
    assert (SessionOutcome.FINALIZED, SessionOutcome.FINALIZED) == (seen.outcome, unseen.outcome)
    assert [unseen.activation.sms_code] == [a.sms_code for a in late]
    assert 1 == sum(m.startswith("a code arrived late for +") for m in warnings_of(caplog))


async def test_failed_attempts_back_off_doubling_to_a_cap_and_warn_once(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Six failed finalizes: the pauses double from 1 s to the 30 s cap (give or take a
    quarter), and the third failure in a row - only it - is a WARNING naming the call."""
    emulator.set_sms_policy(SmsPolicy(delay=5))
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        state = await client.wait_for_sms(activation)
        emulator.inject_fault("finalize_activation", Fault(status=503), times=6)
        settled = await settle(client, state)
    times = [r.time for r in emulator.requests if r.route == "finalize_activation"]
    pauses = [b - a for a, b in itertools.pairwise(times)]
    assert SessionOutcome.FINALIZED == settled.outcome
    assert len(pauses) == 6
    for pause, expected in zip(pauses, [1, 2, 4, 8, 16, 30], strict=True):
        assert expected * 0.75 <= pause <= expected * 1.25, pauses
    said = [m for m in warnings_of(caplog) if m.startswith("settling ")]
    said_once = (
        f"settling +{state.phone}: finalize failed (3 in a row), trying again: "
        "ServerError: 503 InjectedFault: fault injected by a test"
    )
    assert [said_once] == said


@pytest.mark.parametrize(
    ("route", "what"), [("cancel_activation", "cancel"), ("get_activation", "read")]
)
async def test_each_kind_of_attempt_is_named_when_it_keeps_failing(
    emulator: PlatfoneEmulator,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
    route: str,
    what: str,
) -> None:
    """A cancel, or the read of a state past its expiry, failing three times is named."""
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 10, cancel_after=0)])
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        if route == "get_activation":
            await clock.sleep(1_201)  # just expired: its state is read before anything
        emulator.inject_fault(route, Fault(status=503), times=3)
        settled = await settle(client, activation)
    said = [m for m in warnings_of(caplog) if m.startswith("settling ")]
    assert [f"settling +{activation.phone}: {what} failed (3 in a row)"] == [
        m.split(", trying")[0] for m in said
    ]
    expected = "canceled" if route == "cancel_activation" else "expired"
    assert expected == server_state(emulator, activation)["activation_status"]
    assert expected == str(settled.activation.activation_status)
    if expected == "canceled":
        assert "released" == str(settled.activation.billing_status)


async def test_a_cancelled_settling_during_a_failing_cancel_says_a_cancel_was_under_way(
    emulator: PlatfoneEmulator, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled while its cancels keep failing: it says a cancel was under way."""
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 10, cancel_after=0)])
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        emulator.inject_fault("cancel_activation", DOWN, times=10_000)
        await _settle_cancelled_after(client, clock, activation, 20)
    (said,) = [m for m in warnings_of(caplog) if m.startswith("left ")]
    assert " (a cancel was under way); its reserved price is released then" in said


def _scripted(*states: dict[str, Any]) -> Server:
    """A server answering every read with ``states`` in turn (the last one for ever)."""
    replies = [json_response(200, state) for state in states]
    return Server(*replies, default=replies[-1])


async def test_a_late_code_not_billed_says_so_and_one_without_text_counts(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A late SMS whose price is still reserved: the WARNING says its billing, and the
    number is left (not finalized); a code with no text is a code all the same."""
    waiting = {**ACTIVATION, "cancelable_after": None, "expire_at": 4_000_000_000}
    arrived = {**waiting, "sms_status": "smsReceived", "sms_code": "8080", "sms_text": None}
    server = _scripted(waiting, arrived)
    late: list[Activation] = []
    async with server.client(clock, rate_limits=None, on_late_sms=late.append) as client:
        settled = await settle(client, await client.get_activation(AID), code_seen=False)
    assert SessionOutcome.LEFT_TO_EXPIRE == settled.outcome
    assert ["8080"] == [a.sms_code for a in late]
    assert [f"a code arrived late for +{ACTIVATION['phone']}: 8080 (billing reserved)"] == [
        m for m in warnings_of(caplog) if m.startswith("a code arrived")
    ]
