"""``session.replace()``: the silent number is given up in the background, the next-best
offer held instead, and every number is settled when the block ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from platfone_async import Activation, AsyncPlatfone, NoNumbersAvailableError, SessionOutcome
from platfone_async._shopping import Holdings, Shopper
from platfone_async.testing import Offer, PlatfoneEmulator, VirtualClock

from .test_shopping import sell_only

CANCEL_AFTER = 120
SHOPPING: dict[str, Any] = {
    "prefer": "balanced",
    "max_price": None,
    "price_ceiling": None,
    "quality_factor": None,
    "wait_for_slot": True,
}

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.emulator(
        balance=100_000,
        success_rate_check=False,
        offers={
            ("telegram", "uk"): [Offer(100, 0.9, 50, cancel_after=CANCEL_AFTER)],
            ("telegram", "de"): [Offer(50, 0.3, 50, cancel_after=CANCEL_AFTER)],
            ("telegram", "fr"): [Offer(80, 0.8, 50, cancel_after=CANCEL_AFTER)],
        },
    ),
]


@pytest.fixture(autouse=True)
def market(emulator: PlatfoneEmulator) -> None:
    """Telegram is sold only in uk, de and fr."""
    sell_only(emulator, "telegram", "uk", "de", "fr")


def client_of(emulator: PlatfoneEmulator) -> AsyncPlatfone:
    return emulator.client(rate_limits=None, max_retries=0)


def status(emulator: PlatfoneEmulator, activation_id: str) -> str:
    return str(emulator.activation(activation_id)["activation_status"])


async def test_replace_holds_the_next_offer_and_cancels_the_old_in_the_background(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """replace() returns at once with a number in the next-best country; the old one is
    cancelled once allowed, by the time the block has ended."""
    async with clock.autojump(), client_of(emulator) as client:
        async with client.activation("telegram", None) as session:
            first = session.activation
            started = clock.time()
            second = await session.replace()
            returned_after = clock.time() - started
            old_then = status(emulator, first.activation_id)
            during = [a.activation_id for a in session.numbers]
        ended_after = clock.time() - started
    assert ("fr", "uk") == (first.country_id, second.country_id)
    assert second.activation_id == session.activation.activation_id
    assert [first.activation_id, second.activation_id] == during
    assert returned_after < CANCEL_AFTER
    assert "active" == old_then
    assert ended_after >= CANCEL_AFTER
    assert ["canceled", "canceled"] == [status(emulator, a.activation_id) for a in session.numbers]
    assert ["canceled", "canceled"] == [a.activation_status for a in session.numbers]
    assert SessionOutcome.CANCELED == session.outcome


async def test_a_code_that_reaches_the_old_number_is_not_lost(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """An SMS on the number given up, before its cancel: it is finalized, and its code is
    in session.numbers; the current number is settled on its own terms."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", ["uk", "de"]) as session,
    ):
        first = session.activation
        await session.replace()
        emulator.deliver_sms(first.activation_id, "424242")
    old, current = session.numbers
    assert ("finalized", "424242") == (old.activation_status, old.sms_code)
    assert "finalized" == status(emulator, first.activation_id)
    assert "canceled" == status(emulator, current.activation_id)


async def test_every_number_is_settled_when_the_block_ends_by_an_error(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Replaced twice, then an error in the block: the error comes out as it was, and
    all three numbers end cancelled."""

    class Boom(Exception):
        pass

    error = Boom("inside the block")
    held = []

    async def replace_twice_then_fail(client: AsyncPlatfone) -> None:
        async with client.activation("telegram", None) as session:
            held.append(session)
            await session.replace()
            await session.replace()
            raise error

    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(Boom) as info:
            await replace_twice_then_fail(client)
    assert error is info.value
    [session] = held
    assert ["fr", "uk", "de"] == [a.country_id for a in session.numbers]
    assert {"canceled"} == {status(emulator, a.activation_id) for a in session.numbers}


async def test_with_one_country_another_number_there(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A session on one country replaces its number with another in that country; once
    the block has ended, replace() orders nothing."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", "de") as session,
    ):
        first = session.activation
        second = await session.replace()
    assert ("de", "de") == (first.country_id, second.country_id)
    assert first.activation_id != second.activation_id
    with pytest.raises(RuntimeError, match="inside the block"):
        await session.replace()  # the block has ended: nothing more is ordered
    assert 2 == emulator.orders_placed()


async def test_no_number_to_replace_with_keeps_the_current_one(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Every offer sold out: replace() raises, and the session keeps its number."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", ["uk", "de"]) as session,
    ):
        first = session.activation
        for country_id in ("uk", "de"):
            emulator.catalog.set_stock("telegram", country_id, 0)
        with pytest.raises(NoNumbersAvailableError):
            await session.replace()
        kept = session.activation
    assert first == kept
    assert [first.activation_id] == [a.activation_id for a in session.numbers]
    assert "canceled" == status(emulator, first.activation_id)


async def test_a_late_code_on_a_replaced_number_reaches_on_late_sms(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """The code that reaches a number given up is handed to the client's on_late_sms."""
    late: list[Activation] = []
    async with (
        clock.autojump(),
        emulator.client(rate_limits=None, max_retries=0, on_late_sms=late.append) as client,
        client.activation("telegram", ["uk", "de"]) as session,
    ):
        first = session.activation
        await session.replace()
        clock.advance(30)
        emulator.deliver_sms(first.activation_id, "777000")
    assert [(first.activation_id, "777000")] == [(a.activation_id, a.sms_code) for a in late]


async def test_abandon_stops_settling_the_numbers_given_up(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A second interruption (abandon) ends the background settling at once, though it
    is shielded from every other cancellation."""
    settling = anyio.Event()

    async def never_done(state: Activation, on_state: Callable[[Activation], object]) -> Activation:
        settling.set()
        await anyio.sleep(10)  # real seconds: a settling that abandon() failed to end
        return state

    async with client_of(emulator) as client:
        first = await client.create_activation("telegram", "uk")
        holdings = Holdings(Shopper(client, "telegram", "de", **SHOPPING), first)
        started = time.monotonic()
        async with anyio.create_task_group() as holdings.background:
            await holdings.replace(first, never_done)
            await settling.wait()
            holdings.abandon()
        waited = time.monotonic() - started
    assert waited < 5
    assert first.activation_id == holdings.states[0].activation_id
