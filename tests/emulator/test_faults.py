"""Steering the emulator: injected faults, automatic SMS, events and counters."""

from __future__ import annotations

import re

import anyio
import pytest

from platfone_async import (
    APIConnectionError,
    AsyncPlatfone,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
)
from platfone_async.testing import (
    EmulatorEvent,
    Fault,
    Offer,
    PlatfoneEmulator,
    SmsPolicy,
    VirtualClock,
)

PRICE = 100

pytestmark = pytest.mark.emulator(
    balance=1_000,
    success_rate_check=False,
    offers={
        ("telegram", "uk"): [Offer(PRICE, 0.8, 100)],
        ("google", "uk"): [Offer(PRICE, 0.8, 100)],
    },
)


def client_of(emulator: PlatfoneEmulator, max_retries: int = 0) -> AsyncPlatfone:
    # No order reconciliation: these tests look at the emulator's faults as they land.
    policy = RetryPolicy(max_retries=max_retries, reconcile_orders=False)
    return emulator.client(rate_limits=None, retry_policy=policy)


@pytest.mark.anyio
async def test_latency_runs_on_the_emulator_clock(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A 30 s delay passes in virtual time; the request then arrives and succeeds."""
    emulator.inject_fault("get_balance", Fault(delay=30))
    start = clock.time()
    async with clock.autojump(), client_of(emulator) as client:
        balance = await client.get_balance()
    assert 1_000 == balance.total
    assert start + 30 == emulator.requests[0].time


@pytest.mark.anyio
async def test_a_late_answer_comes_after_the_order_is_placed(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """``answer_delay``: the order is in the emulator's state at once, its answer 20 s
    later - while the client still waits, the history already shows the activation."""
    emulator.inject_fault("create_activation", Fault(answer_delay=20))
    start = clock.time()
    seen_meanwhile: list[str] = []
    async with clock.autojump(), client_of(emulator) as client:

        async def look() -> None:
            await clock.sleep(5)
            seen_meanwhile.extend(a["activation_id"] for a in emulator.activations())

        async with anyio.create_task_group() as tg:
            tg.start_soon(look)
            activation = await client.create_activation("telegram", "uk")
            answered = clock.time() - start
    assert [activation.activation_id] == seen_meanwhile
    assert 20 <= answered < 21
    assert start == emulator.requests[0].time


@pytest.mark.anyio
async def test_an_injected_status_answers_before_the_emulator_acts(
    emulator: PlatfoneEmulator,
) -> None:
    """A 503 with a body replaces the answer and no order is placed."""
    emulator.inject_fault("create_activation", Fault(status=503, body={"oops": True}))
    async with client_of(emulator) as client:
        with pytest.raises(ServerError) as caught:
            await client.create_activation("telegram", "uk")
        await client.create_activation("telegram", "uk")
    assert 503 == caught.value.status_code
    assert '{"oops": true}' == caught.value.body
    assert 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_an_idempotent_call_survives_a_transient_5xx(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Two injected 502s then the real answer: the client's retries get through."""
    emulator.inject_fault(
        "get_balance", Fault(status=502, body="<html>bad gateway</html>"), times=2
    )
    async with clock.autojump(), client_of(emulator, max_retries=2) as client:
        balance = await client.get_balance()
    assert 1_000 == balance.total
    assert [502, 502, 200] == [r.status for r in emulator.requests]


@pytest.mark.anyio
async def test_a_connection_dropped_before_acting_places_no_order(
    emulator: PlatfoneEmulator,
) -> None:
    """The client sees a connection error; the ledger shows nothing happened."""
    emulator.inject_fault("create_activation", Fault(drop=True))
    async with client_of(emulator) as client:
        with pytest.raises(APIConnectionError):
            await client.create_activation("telegram", "uk")
    assert 0 == emulator.orders_placed()
    assert 1_000 == emulator.balance()["available"]
    assert [None] == [r.status for r in emulator.requests]


@pytest.mark.anyio
async def test_a_connection_dropped_after_acting_leaves_exactly_one_order(
    emulator: PlatfoneEmulator,
) -> None:
    """The order is placed, then the answer is lost: one order, not retried blindly."""
    emulator.inject_fault("create_activation", Fault(drop=True, after_processing=True))
    async with client_of(emulator, max_retries=2) as client:
        with pytest.raises(APIConnectionError):
            await client.create_activation("telegram", "uk")
    assert 1 == emulator.orders_placed()
    assert 1 == emulator.request_count("create_activation")
    assert PRICE == emulator.balance()["reserved"]


@pytest.mark.anyio
async def test_a_status_after_acting_hides_a_done_cancel(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A 504 after the cancel happened: the client errs, the activation is canceled."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        clock.advance(120)
        emulator.inject_fault("cancel_activation", Fault(status=504, after_processing=True))
        with pytest.raises(ServerError):
            await client.cancel_activation(activation)
        after = await client.get_activation(activation)
    assert ("canceled", "released") == (after.activation_status, after.billing_status)


@pytest.mark.anyio
async def test_a_malformed_body_is_a_decode_error_after_acting(
    emulator: PlatfoneEmulator,
) -> None:
    """A cut-off JSON body: ResponseDecodeError, though the order was placed."""
    emulator.inject_fault("create_activation", Fault(malformed=True))
    async with client_of(emulator) as client:
        with pytest.raises(ResponseDecodeError):
            await client.create_activation("telegram", "uk")
    assert 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_faults_apply_to_the_next_n_requests_of_their_route(
    emulator: PlatfoneEmulator,
) -> None:
    """times=N spends a fault on N requests; '*' matches any route; clear_faults empties."""
    emulator.inject_fault("get_balance", Fault(status=500), times=2)
    emulator.inject_fault("*", Fault(status=418))
    async with emulator.http_client(headers={"X-Api-Key": emulator.api_key}) as http:
        statuses = [(await http.get("/user/balance")).status_code for _ in range(3)]
        wildcard = (await http.get("/activation/countries")).status_code
        emulator.inject_fault("*", Fault(status=500), times=5)
        emulator.clear_faults()
        clean = (await http.get("/activation/countries")).status_code
    assert [500, 500, 418] == statuses  # the route's own fault first, then the wildcard
    assert (200, 200) == (wildcard, clean)


def test_a_fault_is_one_thing() -> None:
    """A fault cannot both drop and answer, nor wait a negative time."""
    with pytest.raises(ValueError, match="either"):
        Fault(drop=True, status=500)
    with pytest.raises(ValueError, match="delay"):
        Fault(delay=-1)
    with pytest.raises(ValueError, match="answer_delay"):
        Fault(answer_delay=-1)


@pytest.mark.anyio
async def test_auto_sms_arrives_after_its_delay(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """With a 3 s policy the SMS is there at 3 s, not before, with a 6-digit code."""
    emulator.set_sms_policy(SmsPolicy(delay=3))
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        clock.advance(2.9)
        early = await client.get_activation(activation)
        clock.advance(0.1)
        arrived = await client.get_activation(activation)
    assert "smsRequested" == early.sms_status
    assert ("smsReceived", "billed") == (arrived.sms_status, arrived.billing_status)
    assert arrived.sms_code is not None
    assert re.fullmatch(r"\d{6}", arrived.sms_code)
    assert f"Your telegram verification code is {arrived.sms_code}" == arrived.sms_text
    assert int(activation.created_at.timestamp()) + 3 == int(arrived.updated_at.timestamp())


@pytest.mark.anyio
async def test_tick_delivers_without_any_request(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Listeners hear of a due SMS on tick(), with no request in between."""
    events: list[EmulatorEvent] = []
    emulator.add_listener(events.append)
    emulator.set_sms_policy(SmsPolicy(delay=(2, 3)))
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
    due = emulator.next_event_at()
    assert due is not None
    assert 2 <= due - clock.time() <= 3
    clock.advance(3)
    assert [] == events
    emulator.tick()
    assert ["activation.updated"] == [e.type for e in events]
    assert activation.activation_id == events[0].data["activation_id"]
    assert "smsReceived" == events[0].data["sms_status"]


@pytest.mark.anyio
async def test_advance_moves_the_clock_and_applies_what_is_due(
    emulator: PlatfoneEmulator,
) -> None:
    """emulator.advance() both moves a VirtualClock and delivers the due SMS."""
    emulator.set_sms_policy(SmsPolicy(delay=5))
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
    emulator.advance(5)
    assert "smsReceived" == emulator.activation(activation.activation_id)["sms_status"]


@pytest.mark.anyio
async def test_policies_per_service_probability_and_retry(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """probability 0 never delivers; a per-service policy wins; a retry gets a new SMS."""
    emulator.set_sms_policy(SmsPolicy(delay=1, probability=0.0))
    emulator.set_sms_policy(SmsPolicy(delay=2), service_id="telegram")
    async with client_of(emulator) as client:
        silent = await client.create_activation("google", "uk")
        talking = await client.create_activation("telegram", "uk")
        clock.advance(2)
        first = await client.get_activation(talking)
        await client.retry_activation(talking)
        clock.advance(2)
        second = await client.get_activation(talking)
        clock.advance(1200)
        never = await client.get_activation(silent)
    assert ("retryReceived", "smsReceived") == (second.sms_status, first.sms_status)
    assert first.sms_code != second.sms_code
    assert ("smsRequested", "expired", "released") == (
        never.sms_status,
        never.activation_status,
        never.billing_status,
    )


@pytest.mark.anyio
async def test_an_sms_due_after_expiry_never_arrives(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Expiry comes first when the promised SMS is later than expire_at."""
    emulator.set_sms_policy(SmsPolicy(delay=1500))
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        clock.advance(2000)
        after = await client.get_activation(activation)
    assert ("smsRequested", "expired") == (after.sms_status, after.activation_status)


@pytest.mark.anyio
async def test_a_market_policy_follows_each_offers_quality(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """With ``follow_quality`` the offer decides: of 200 numbers from a 0.9 offer about nine
    in ten get their SMS, of 200 from a 0.2 offer about one in five, and each arrives after
    the drawn delay stretched by ``2 - quality`` (11 s and 18 s for a 10 s policy)."""
    emulator.set_balance(1_000_000)
    emulator.set_offer("telegram", "uk", price=1, quality=0.9, count=200)
    emulator.set_offer("telegram", "de", price=1, quality=0.2, count=200)
    emulator.set_sms_policy(SmsPolicy(delay=10, follow_quality=True))
    emulator.max_active = None
    emulator.rate_limits_enabled = False
    async with emulator.http_client(headers={"X-Api-Key": emulator.api_key}) as http:

        async def order(country_id: str) -> str:
            body = {"service_id": "telegram", "country_id": country_id}
            answer = await http.post("/activation", json=body)
            assert 200 == answer.status_code, answer.text
            return str(answer.json()["activation_id"])

        good = [await order("uk") for _ in range(200)]
        poor = [await order("de") for _ in range(200)]
    ordered_at = clock.time()
    delivered_at: dict[str, float] = {}

    def heard(event: EmulatorEvent) -> None:
        delivered_at.setdefault(event.data["activation_id"], clock.time())

    emulator.add_listener(heard)
    for _ in range(20):
        clock.advance(1)
        emulator.tick()
    got = {aid for aid in good + poor if emulator.activation(aid)["sms_code"] is not None}
    assert 165 <= len(got.intersection(good)) <= 195
    assert 25 <= len(got.intersection(poor)) <= 55
    assert {11.0} == {round(delivered_at[a] - ordered_at) for a in got.intersection(good)}
    assert {18.0} == {round(delivered_at[a] - ordered_at) for a in got.intersection(poor)}


def test_set_offer_checks_what_it_sells(emulator: PlatfoneEmulator) -> None:
    """set_offer takes a quality within 0..1, a price >= 1, a stock >= 0, and a service and
    country of the catalog; a bad one changes nothing."""
    before = emulator.catalog.offers("telegram", "uk")
    with pytest.raises(ValueError, match="quality"):
        emulator.set_offer("telegram", "uk", price=10, quality=1.5)
    with pytest.raises(ValueError, match="price"):
        emulator.set_offer("telegram", "uk", price=0)
    with pytest.raises(KeyError, match="nowhere"):
        emulator.set_offer("telegram", "nowhere", price=10)
    assert before == emulator.catalog.offers("telegram", "uk")


def test_sms_policy_checks_its_numbers() -> None:
    """Delays are >= 0 and probabilities within 0..1."""
    with pytest.raises(ValueError, match="delay"):
        SmsPolicy(delay=(3, 1))
    with pytest.raises(ValueError, match="probability"):
        SmsPolicy(probability=1.5)


@pytest.mark.anyio
async def test_low_balance_is_announced_once(emulator: PlatfoneEmulator) -> None:
    """Dropping under the threshold emits account.low_balance once, until topped up."""
    events: list[EmulatorEvent] = []
    emulator.add_listener(events.append)
    emulator.set_balance(250)
    async with client_of(emulator) as client:
        await client.create_activation("telegram", "uk")
        await client.create_activation("telegram", "uk")
        emulator.set_balance(1_000)
        emulator.set_balance(50)
    assert ["account.low_balance", "account.low_balance"] == [e.type for e in events]
    assert 50 == events[0].data["balance"]
    assert emulator.api_key not in repr(events[0])


@pytest.mark.anyio
async def test_the_ledger_counts_orders_per_key(emulator: PlatfoneEmulator) -> None:
    """orders_placed is per key; request_count splits by route and by key."""
    other = emulator.add_account(balance=1_000)
    async with client_of(emulator) as mine, emulator.client(other, rate_limits=None) as theirs:
        await mine.create_activation("telegram", "uk")
        await theirs.create_activation("telegram", "uk")
        await theirs.create_activation("telegram", "uk")
        await theirs.get_balance()
    assert (1, 2) == (emulator.orders_placed(), emulator.orders_placed(other))
    assert 3 == emulator.request_count("create_activation")
    assert 3 == emulator.request_count(api_key=other)
    assert 1 == emulator.request_count("get_balance", api_key=other)
