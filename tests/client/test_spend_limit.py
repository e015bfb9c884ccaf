"""The spend limit: an order that would take the money of a rolling period over it is
refused before it leaves; released money frees the budget; landed orders count their
actual price."""

from __future__ import annotations

import datetime as dt

import pytest

from platfone_async import (
    AsyncPlatfone,
    InvalidParameterError,
    NoNumbersAvailableError,
    SpendLimit,
    SpendLimitError,
)
from platfone_async.testing import Offer, PlatfoneEmulator, VirtualClock

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.emulator(
        balance=100_000,
        success_rate_check=False,
        offers={
            ("telegram", "uk"): [Offer(50, 0.8, 100, cancel_after=0)],
            ("telegram", "de"): [Offer(40, 0.8, 100), Offer(90, 0.9, 100)],
            ("telegram", "fr"): [Offer(30, 0.8, 0)],
        },
    ),
]

HOUR = 3_600.0


def client_of(emulator: PlatfoneEmulator, cents: int = 100) -> AsyncPlatfone:
    return emulator.client(rate_limits=None, spend_limit=SpendLimit(cents, HOUR))


async def test_an_order_over_the_limit_never_reaches_the_server(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """The refused order sends nothing; the error says the limit, what is counted, the
    price taken, and when room frees (an hour after the money counted)."""
    async with client_of(emulator) as client:
        await client.create_activation("telegram", "uk", max_price=60)
        clock.advance(600)
        sent = emulator.request_count("create_activation")
        with pytest.raises(SpendLimitError) as info:
            await client.create_activation("telegram", "uk", max_price=60)
    error = info.value
    assert sent == emulator.request_count("create_activation")
    assert 1 == emulator.orders_placed()
    assert (SpendLimit(100, HOUR), 50, 60) == (error.limit, error.counted, error.price)
    landed_at = clock.time() - 600
    assert dt.datetime.fromtimestamp(landed_at + HOUR, dt.timezone.utc) == error.room_at
    assert "100 cents per 1h" in str(error)
    assert "50 cents reserved or billed" in str(error)


async def test_a_landed_order_counts_its_actual_price(emulator: PlatfoneEmulator) -> None:
    """Checked at its max_price (90) but sold at 50, the order leaves room for another 50."""
    async with client_of(emulator) as client:
        first = await client.create_activation("telegram", "uk", max_price=90)
        second = await client.create_activation("telegram", "uk", max_price=50)
    assert (50, 50) == (first.price, second.price)


async def test_released_money_frees_the_budget(emulator: PlatfoneEmulator) -> None:
    """A cancelled number's money no longer counts: the next order fits again."""
    async with client_of(emulator) as client:
        first = await client.create_activation("telegram", "uk", max_price=60)
        with pytest.raises(SpendLimitError):
            await client.create_activation("telegram", "uk", max_price=60)
        await client.cancel_activation(first)
        again = await client.create_activation("telegram", "uk", max_price=60)
    assert 2 == emulator.orders_placed()
    assert "reserved" == again.billing_status


async def test_money_of_a_number_seen_expired_without_sms_is_released(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A number that expired without an SMS, once seen so, frees its money."""
    async with client_of(emulator) as client:
        first = await client.create_activation("telegram", "uk", max_price=60)
        clock.advance(1_300)  # past its expire_at (20 minutes)
        seen = await client.get_activation(first)
        await client.create_activation("telegram", "uk", max_price=60)
    assert ("expired", "released") == (seen.activation_status, seen.billing_status)


async def test_money_leaves_the_rolling_period(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Money billed or reserved more than a period ago no longer counts."""
    async with client_of(emulator) as client:
        await client.create_activation("telegram", "uk", max_price=60)
        clock.advance(HOUR + 1)
        await client.create_activation("telegram", "uk", max_price=60)
    assert 2 == emulator.orders_placed()


async def test_without_max_price_the_top_of_the_price_range_is_taken(
    emulator: PlatfoneEmulator,
) -> None:
    """An order without a cap may be sold any number of the range: it is checked at the
    range's top (one get_price), and refused when that does not fit."""
    async with client_of(emulator, cents=80) as client:
        with pytest.raises(SpendLimitError) as info:
            await client.create_activation("telegram", "de")
        landed = await client.create_activation("telegram", "de", max_price=80)
    assert 90 == info.value.price
    assert 1 == emulator.request_count("get_price")
    assert 40 == landed.price


async def test_an_order_the_server_refused_frees_its_money(emulator: PlatfoneEmulator) -> None:
    """Nothing in stock: the order placed nothing, so its money is not counted."""
    async with client_of(emulator) as client:
        with pytest.raises(NoNumbersAvailableError):
            await client.create_activation("telegram", "fr", max_price=100)
        await client.create_activation("telegram", "uk", max_price=100)
    assert 1 == emulator.orders_placed()


async def test_a_session_checks_its_price_ceiling(emulator: PlatfoneEmulator) -> None:
    """A session orders at its price_ceiling: that is the price checked."""
    async with client_of(emulator) as client:
        with pytest.raises(SpendLimitError) as info:
            async with client.activation("telegram", "uk", price_ceiling=150):
                pass
    assert 150 == info.value.price
    assert 0 == emulator.request_count("create_activation")


def test_a_spend_limit_is_checked_when_made() -> None:
    """Cents and period must be sensible; the text form reads CENTS/PERIOD."""
    assert SpendLimit(500, 3_600) == SpendLimit.parse("500/1h")
    assert SpendLimit(2_000, 7 * 86_400) == SpendLimit.parse("2000/7d")
    assert SpendLimit(5, 90) == SpendLimit(5, dt.timedelta(seconds=90))
    assert "500 cents per 1d" == str(SpendLimit.parse("500 / 1d"))
    for cents, period in ((0, 60), (10, 0), (10, 32 * 86_400), (1.5, 60)):
        with pytest.raises(InvalidParameterError):
            SpendLimit(cents, period)  # type: ignore[arg-type]
    for text in ("500", "h/500", "500/1w", ""):
        with pytest.raises(InvalidParameterError):
            SpendLimit.parse(text)
    with pytest.raises(InvalidParameterError):
        AsyncPlatfone("key", spend_limit=500)  # type: ignore[arg-type]
