"""Ambiguous orders are reconciled through the activation history, never resent blindly."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import httpx
import pytest

import platfone_async as pf
from platfone_async._convert import converter
from platfone_async._reconcile import OrderBook, VerdictKind, _Snapshot, reconcile
from platfone_async._retry import SendTrace
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, VirtualClock
from tests._faultkit import API_KEY, RewritingTransport, new_client, new_emulator
from tests._support import ACTIVATION

pytestmark = pytest.mark.anyio


def _client(emulator: PlatfoneEmulator, **kwargs: Any) -> pf.AsyncPlatfone:
    return emulator.client(**kwargs)


def _posts(emulator: PlatfoneEmulator) -> int:
    return emulator.request_count("create_activation")


def _history_reads(emulator: PlatfoneEmulator) -> int:
    return emulator.request_count("get_activation_history")


async def _order_directly(emulator: PlatfoneEmulator, service_id: str = "telegram") -> str:
    """An order placed on the same account behind the client's back (another process)."""
    async with emulator.http_client(headers={"X-Api-Key": API_KEY}) as http:
        body = {"service_id": service_id, "country_id": "uk"}
        response = await http.post("/activation", json=body)
    assert 200 == response.status_code
    return str(response.json()["activation_id"])


async def test_an_order_placed_before_its_answer_was_lost_is_found() -> None:
    """A 502 after the server placed the order: the history has it; it is returned, once."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=502, after_processing=True))
    async with clock.autojump(), _client(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        slots = (await client.rate_limit_state()).slots
    assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]
    assert (1, 1) == (_posts(emulator), _history_reads(emulator))
    assert (1, 1) == (slots.in_use, slots.bound)


async def test_a_complete_error_answer_with_nothing_in_the_history_is_sent_once_more() -> None:
    """A 502 before the server acted: one empty lookup per reconcile delay (three, the
    last 10 s after the failure), then one more POST succeeds."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=502))
    policy = pf.RetryPolicy(reconcile_delays=(1.0, 4.0, 10.0))
    async with clock.autojump(), _client(emulator, retry_policy=policy) as client:
        start = clock.time()
        activation = await client.create_activation("telegram", "uk")
        waited = clock.time() - start
    assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]
    assert (2, 3) == (_posts(emulator), _history_reads(emulator))
    assert 10.0 == waited  # the last lookup, 10 s after the failure


async def test_not_placed_twice_raises_the_error_after_one_resend() -> None:
    """Two 502s before acting: one resend only, then the 502 is raised; the slot is back."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=502), times=2)
    async with clock.autojump(), _client(emulator) as client:
        with pytest.raises(pf.ServerError) as caught:
            await client.create_activation("telegram", "uk")
        slots = (await client.rate_limit_state()).slots
    assert 502 == caught.value.status_code
    assert (2, 0, 0) == (_posts(emulator), emulator.orders_placed(), slots.in_use)


async def test_without_retries_a_not_placed_order_raises_its_error() -> None:
    """max_retries=0: the history shows nothing, so the 503 is raised and nothing resent."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=503))
    async with clock.autojump(), _client(emulator, max_retries=0) as client:
        with pytest.raises(pf.ServerError):
            await client.create_activation("telegram", "uk")
        slots = (await client.rate_limit_state()).slots
    assert (1, 0, 0) == (_posts(emulator), emulator.orders_placed(), slots.in_use)


@pytest.mark.parametrize(
    "fault",
    [Fault(drop=True), Fault(status=504)],
    ids=["dropped", "504"],
)
async def test_an_unanswered_order_not_in_the_history_is_unknown(fault: Fault) -> None:
    """A dropped connection or a 504 and an empty history: OrderOutcomeUnknownError with
    the service, country, window and last error; no resend; the slot stays taken."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", fault)
    async with clock.autojump(), _client(emulator) as client:
        sent = clock.time()
        with pytest.raises(pf.OrderOutcomeUnknownError) as caught:
            await client.create_activation("telegram", "uk")
        slots = (await client.rate_limit_state()).slots
    error = caught.value
    assert ("telegram", "uk") == (error.service_id, error.country_id)
    assert error.window_start <= dt.datetime.fromtimestamp(sent, tz=dt.timezone.utc)
    assert dt.datetime.fromtimestamp(sent, tz=dt.timezone.utc) <= error.window_end
    assert isinstance(error.last_error, (pf.APIConnectionError, pf.ServerError))
    assert error.__cause__ is error.last_error
    assert () == error.candidates
    assert (1, 0, 1) == (_posts(emulator), emulator.orders_placed(), slots.in_use)
    assert "may still be placing it" in str(error)


async def test_reconciliation_off_raises_the_error_as_it_is() -> None:
    """reconcile_orders=False: the dropped connection is raised, the history not read."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(drop=True, after_processing=True))
    policy = pf.RetryPolicy(reconcile_orders=False)
    async with clock.autojump(), _client(emulator, retry_policy=policy) as client:
        with pytest.raises(pf.APIConnectionError):
            await client.create_activation("telegram", "uk")
        slots = (await client.rate_limit_state()).slots
    assert (1, 0, 1) == (emulator.orders_placed(), _history_reads(emulator), slots.in_use)


async def test_a_malformed_answer_is_found_in_the_history() -> None:
    """A cut-off 200 (whose half id leads nowhere): the order is found in the history."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(malformed=True))
    async with clock.autojump(), _client(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
    assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]
    assert 1 == _posts(emulator)


def _spoil_orders(request: httpx.Request, response: httpx.Response, body: bytes) -> bytes | None:
    if request.method != "POST" or not request.url.path.endswith("/activation"):
        return None
    document = json.loads(body)
    return json.dumps({**document, "price": "lots"}).encode()


async def test_an_undecodable_answer_naming_its_activation_is_fetched_by_id() -> None:
    """A 200 that does not fit the model but names its activation: fetched by id, no
    history read."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    async with clock.autojump(), anyio.create_task_group() as background:
        wrap = functools.partial(RewritingTransport, rewrite=_spoil_orders)
        async with new_client(emulator, clock, background, wrap=wrap) as client:
            activation = await client.create_activation("telegram", "uk")
    assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]
    assert (1, 0) == (_posts(emulator), _history_reads(emulator))
    assert 100 == activation.price


async def test_a_history_that_lags_is_read_again() -> None:
    """The history shows an order only 5 s after it: the third lookup (10 s) finds it."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=504, after_processing=True))

    def lag(request: httpx.Request, response: httpx.Response, body: bytes) -> bytes | None:
        if not request.url.path.endswith("/history"):
            return None
        page = json.loads(body)
        fresh = [a for a in page["activations"] if clock.time() - a["created_at"] < 5]
        page["activations"] = [a for a in page["activations"] if a not in fresh]
        return json.dumps(page).encode()

    async with clock.autojump(), anyio.create_task_group() as background:
        wrap = functools.partial(RewritingTransport, rewrite=lag)
        async with new_client(emulator, clock, background, wrap=wrap) as client:
            start = clock.time()
            activation = await client.create_activation("telegram", "uk")
            waited = clock.time() - start
    assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]
    assert (3, 10.0) == (_history_reads(emulator), waited)


async def test_an_unreadable_history_leaves_the_outcome_unknown() -> None:
    """Every history read fails: OrderOutcomeUnknownError says so; the order is not resent."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=502))
    emulator.inject_fault("get_activation_history", Fault(status=500), times=100)
    async with clock.autojump(), _client(emulator) as client:
        with pytest.raises(pf.OrderOutcomeUnknownError, match="could not be read"):
            await client.create_activation("telegram", "uk")
    assert (1, 0) == (_posts(emulator), emulator.orders_placed())


async def test_an_order_someone_else_placed_in_the_window_makes_it_undecidable() -> None:
    """Two activations in the window, one order of ours: both are named as candidates,
    neither is taken."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    foreign = await _order_directly(emulator)
    emulator.inject_fault("create_activation", Fault(status=502, after_processing=True))
    async with clock.autojump(), _client(emulator) as client:
        with pytest.raises(pf.OrderOutcomeUnknownError) as caught:
            await client.create_activation("telegram", "uk")
    placed = {a["activation_id"] for a in emulator.activations()}
    assert foreign in placed
    assert placed == {a.activation_id for a in caught.value.candidates}
    assert "did not order" in str(caught.value)


async def test_orders_before_the_window_and_of_other_services_are_not_candidates() -> None:
    """An older order of the same offer and a same-time order of another service are not
    mistaken for the lost one."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    older = await _order_directly(emulator)
    clock.advance(60)
    other = await _order_directly(emulator, "google")
    emulator.inject_fault("create_activation", Fault(drop=True, after_processing=True))
    async with clock.autojump(), _client(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
    assert activation.activation_id not in (older, other)
    assert 3 == emulator.orders_placed()


async def test_an_activation_above_the_orders_max_price_is_never_claimed() -> None:
    """An activation of the same offer in the window but dearer than the lost order's
    max_price is not that order's: the order is found absent and sent once more."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.catalog.set_offers("telegram", "uk", [Offer(300, 0.8, 10)])
    dear = await _order_directly(emulator)
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 10)])
    emulator.inject_fault("create_activation", Fault(status=502))
    async with clock.autojump(), _client(emulator) as client:
        activation = await client.create_activation("telegram", "uk", max_price=200)
    assert dear != activation.activation_id
    assert 100 == activation.price
    # the other order, the lost one, the one resend
    assert (3, 2) == (_posts(emulator), emulator.orders_placed())


async def test_an_order_priced_at_exactly_its_max_price_is_found() -> None:
    """max_price is the most the caller pays, inclusive: a lost order whose number cost
    exactly max_price is found in the history, not resent."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=502, after_processing=True))
    async with clock.autojump(), _client(emulator) as client:
        activation = await client.create_activation("telegram", "uk", max_price=100)
    assert 100 == activation.price
    assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]
    assert 1 == _posts(emulator)


async def test_a_window_deep_in_the_history_is_read_page_by_page() -> None:
    """Sixty newer orders push the lost one to page two: it is found there."""
    clock = VirtualClock()
    emulator = new_emulator(clock, max_active=None)
    emulator.inject_fault("create_activation", Fault(status=502, after_processing=True))
    policy = pf.RetryPolicy(reconcile_delays=(8.0,))

    async def flood() -> None:
        await clock.sleep(6.5)  # after the window (failure + 5 s skew) has closed
        for _ in range(60):
            await _order_directly(emulator)

    async with (
        clock.autojump(),
        _client(emulator, retry_policy=policy) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(flood)
        activation = await client.create_activation("telegram", "uk")
    assert activation.activation_id == emulator.activations()[0]["activation_id"]
    assert 2 == _history_reads(emulator)


async def test_a_window_beyond_ten_pages_back_is_undecided() -> None:
    """501 newer orders push the lost one past the ten pages of 50 read back: the outcome
    is unknown (it says how far back the window lies), never a guess."""
    clock = VirtualClock()
    emulator = new_emulator(clock, max_active=None, rate_limits=None, balance=1_000_000)
    emulator.inject_fault("create_activation", Fault(status=502, after_processing=True))
    policy = pf.RetryPolicy(reconcile_delays=(8.0,))

    async def flood() -> None:
        await clock.sleep(6.5)  # after the window (failure + 5 s skew) has closed
        async with emulator.http_client(headers={"X-Api-Key": API_KEY}) as http:
            for _ in range(501):
                body = {"service_id": "telegram", "country_id": "uk"}
                assert 200 == (await http.post("/activation", json=body)).status_code

    async with (
        clock.autojump(),
        _client(emulator, retry_policy=policy, rate_limits=None) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(flood)
        with pytest.raises(pf.OrderOutcomeUnknownError) as caught:
            await client.create_activation("telegram", "uk")
    assert "more than 500 activations back" in str(caught.value)
    assert 10 == _history_reads(emulator)
    assert 502 == emulator.orders_placed()  # the lost one (not resent) and the flood


async def test_concurrent_lost_answers_each_get_their_own_order() -> None:
    """Five orders at once whose answers are all lost: five activations, each handed to
    exactly one caller, from shared history reads."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=502, after_processing=True), times=5)
    got: list[str] = []
    async with clock.autojump(), _client(emulator) as client, anyio.create_task_group() as tg:
        for _ in range(5):

            async def one() -> None:
                got.append((await client.create_activation("telegram", "uk")).activation_id)

            tg.start_soon(one)
    assert sorted(got) == sorted(a["activation_id"] for a in emulator.activations())
    assert 5 == len(set(got))
    assert 1 == _history_reads(emulator)


async def test_an_order_in_flight_keeps_its_number_from_a_reconciliation() -> None:
    """Order A is placed but its answer is slow; order B's answer is lost at the same
    moment: B waits for A's answer before judging, so each gets its own number."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    got: dict[str, str] = {}
    emulator.inject_fault("create_activation", Fault(answer_delay=3))
    async with (
        clock.autojump(),
        anyio.create_task_group() as background,
        new_client(emulator, clock, background) as client,
    ):

        async def order(name: str) -> None:
            got[name] = (await client.create_activation("telegram", "uk")).activation_id

        async with anyio.create_task_group() as tg:
            tg.start_soon(order, "A")
            await clock.sleep(0.5)
            emulator.inject_fault("create_activation", Fault(status=502, after_processing=True))
            tg.start_soon(order, "B")
    assert 2 == len(set(got.values()))
    assert set(got.values()) == {a["activation_id"] for a in emulator.activations()}


async def test_the_history_limit_holds_while_many_orders_reconcile() -> None:
    """Ten orders refused by 502s reconcile together: a few shared reads, no 429."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    emulator.inject_fault("create_activation", Fault(status=502), times=10)
    got: list[str] = []
    async with clock.autojump(), _client(emulator) as client, anyio.create_task_group() as tg:
        for _ in range(10):

            async def one() -> None:
                got.append((await client.create_activation("telegram", "uk")).activation_id)

            tg.start_soon(one)
    assert 10 == len(set(got)) == emulator.orders_placed()
    assert 0 == sum(1 for r in emulator.requests if r.status == 429)
    assert 3 == _history_reads(emulator)


def test_the_window_widens_to_the_clock_difference_it_has_seen() -> None:
    """An order whose created_at was 30 s behind the local clock widens later windows."""
    clock = VirtualClock()
    book = OrderBook(clock)
    assert 5.0 == book.skew(5.0)
    trace = SendTrace()
    trace.sending(clock.time())
    order = book.open("netflix", "us", None, trace)
    created = int(clock.time()) - 30
    activation = converter.structure({**ACTIVATION, "created_at": created}, pf.Activation)
    book.handed_out(order, activation, clock.time())
    assert 30.0 == book.skew(5.0)
    assert book.is_known(activation.activation_id)


async def test_an_order_in_flight_in_another_process_holds_back_the_match() -> None:
    """The fleet's view in flight: while another process has an order of the same offer
    in flight, the candidate waits; once that order lands, having claimed it, it is no
    candidate. An order of another service in flight holds nothing back."""
    clock = VirtualClock()
    start = clock.time()
    book = OrderBook(clock)
    trace = SendTrace()
    trace.sending(clock.time())
    order = book.open("netflix", "us", None, trace)
    created = int(clock.time())
    theirs = converter.structure({**ACTIVATION, "created_at": created}, pf.Activation)
    book.mark_failed(order, 5.0)
    snapshot = _Snapshot(1, clock.time(), float("-inf"), (theirs,))
    flying: list[tuple[str, str, int | None]] = [("netflix", "us", None)]
    claimed: set[str] = set()
    looks: list[float] = []

    async def flights() -> list[tuple[str, str, int | None]]:
        looks.append(clock.time())
        if clock.time() >= start + 3.0:  # their answer arrived: claimed, then landed
            claimed.add(theirs.activation_id)
            return []
        return flying

    async def known(ids: Iterable[str]) -> set[str]:
        return claimed & set(ids)

    async with clock.autojump():
        mine, foreign = await book.match(order, snapshot, 5.0, flights, known)
    assert (None, ()) == (mine, foreign)
    assert looks[-1] - start >= 3.0  # it looked until that order landed
    assert len(looks) > 2

    other_book = OrderBook(clock)
    other = other_book.open("netflix", "us", None, trace)
    other_book.mark_failed(other, 5.0)

    async def elsewhere() -> list[tuple[str, str, int | None]]:
        return [("telegram", "us", None), ("netflix", "us", theirs.price - 1)]

    async def none_known(ids: Iterable[str]) -> set[str]:
        return set()

    async with clock.autojump():
        mine, _ = await other_book.match(other, snapshot, 5.0, elsewhere, none_known)
    assert theirs == mine  # nobody in flight could own it: the failed order's own


async def test_an_activation_an_order_of_a_dead_process_could_own_is_never_taken() -> None:
    """Another process's order of the same offer was in flight when the process died: once
    its lease lapses the match waits no longer, but the candidate it could own comes back
    as foreign, not as ours (ours may never have arrived). An orphan of another offer
    takes nothing away."""
    clock = VirtualClock()
    start = clock.time()
    book = OrderBook(clock)
    trace = SendTrace()
    trace.sending(clock.time())
    order = book.open("netflix", "us", None, trace)
    theirs = converter.structure({**ACTIVATION, "created_at": int(clock.time())}, pf.Activation)
    book.mark_failed(order, 5.0)
    snapshot = _Snapshot(1, clock.time(), float("-inf"), (theirs,))
    offer: tuple[str, str, int | None] = ("netflix", "us", None)

    async def flights() -> list[tuple[str, str, int | None]]:
        return [offer] if clock.time() < start + 2.0 else []  # its owner's lease lapses

    async def orphaned() -> list[tuple[str, str, int | None]]:
        return [] if clock.time() < start + 2.0 else [offer]

    async def none_known(ids: Iterable[str]) -> set[str]:
        return set()

    async with clock.autojump():
        mine, foreign = await book.match(order, snapshot, 5.0, flights, none_known, orphaned)
    assert (None, (theirs,)) == (mine, foreign)
    assert 2.0 <= clock.time() - start < 3.0
    assert not book.is_known(theirs.activation_id)

    other_book = OrderBook(clock)
    other = other_book.open("netflix", "us", None, trace)
    other_book.mark_failed(other, 5.0)

    async def no_flights() -> list[tuple[str, str, int | None]]:
        return []

    async def elsewhere_orphaned() -> list[tuple[str, str, int | None]]:
        return [("telegram", "us", None)]

    async with clock.autojump():
        found = await other_book.match(
            other, snapshot, 5.0, no_flights, none_known, elsewhere_orphaned
        )
    assert (theirs, ()) == found


async def test_the_fleets_orders_in_flight_unreadable_leave_the_outcome_unknown() -> None:
    """Redis cannot say which orders are in flight: the order is undecided, not found."""
    clock = VirtualClock()
    book = OrderBook(clock)
    trace = SendTrace()
    trace.sending(clock.time())
    order = book.open("netflix", "us", None, trace)
    theirs = converter.structure({**ACTIVATION, "created_at": int(clock.time())}, pf.Activation)

    async def page(**kwargs: Any) -> pf.Page[pf.Activation]:
        return pf.Page(items=[theirs], page=1, limit=50, pages=1, total=1)

    async def flights() -> list[tuple[str, str, int | None]]:
        raise pf.RateLimitBackendError("redis is down")

    async def one(activation_id: str) -> pf.Activation:
        raise AssertionError("not looked up by id")

    async with clock.autojump():
        verdict = await reconcile(
            book, order, pf.RetryPolicy(), fetch_page=page, fetch_one=one, flights_elsewhere=flights
        )
    assert VerdictKind.UNDECIDED is verdict.kind
    assert "orders in flight or handed-out ids could not be read" in verdict.reason


async def test_an_answered_order_whose_activation_another_process_took_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's answer makes the number this caller's. Should the fleet say another
    process handed it out already (its reconciliation gave up waiting for this order),
    the caller still gets it, and an ERROR says what happened."""
    clock = VirtualClock()
    emulator = new_emulator(clock)
    async with clock.autojump(), _client(emulator) as client:
        limits = client._http.limits

        async def taken(activation_ids: Sequence[str]) -> list[bool]:
            return [False] * len(activation_ids)  # what a store answers for ids claimed before

        limits.store.claim = taken  # type: ignore[method-assign]
        activation = await client.create_activation("telegram", "uk")
    assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    said = (
        f"activation {activation.activation_id}: the server answered this order with it, "
        "but another process on this key had already handed it out by reconciliation"
    )
    assert [said] == errors
