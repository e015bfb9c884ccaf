"""The store conformance suite, spending: every ``KeyStore`` counts an order's money alike.

The money of a key within a rolling period: an order's price is entered before it
leaves (refused when it would go over the limit), bound to its activation at the actual
price when it lands, and released when the money is. Each test runs over every store on
the real clock with hour-long periods (nothing here sleeps); the tests of two owners run
over the shared stores (two stores on one file or server stand for two processes).
"""

from __future__ import annotations

import anyio
import pytest

from .test_store_conformance import Opener, opener, redis_url, shared

pytestmark = pytest.mark.anyio

__all__ = ["opener", "redis_url", "shared"]  # the suite's fixtures, used here

HOUR = 3_600.0


async def test_money_within_the_limit_is_entered_then_an_order_over_it_refused(
    opener: Opener,
) -> None:
    """Orders fit until the next would go over; the refusal says what is counted and
    that room frees when the oldest money leaves the period."""
    store = opener()
    first = await store.spend_take(100, HOUR, 60)
    second = await store.spend_take(100, HOUR, 30)
    refused = await store.spend_take(100, HOUR, 20)
    assert first.entry is not None
    assert second.entry is not None
    assert (0, 60) == (first.counted, second.counted)
    assert (None, 90) == (refused.entry, refused.counted)
    assert refused.room_in is not None
    assert HOUR - 60 < refused.room_in <= HOUR  # when the first order's 60 leaves
    assert 90 == await store.spend_counted(HOUR)


async def test_a_price_over_the_limit_by_itself_never_fits(opener: Opener) -> None:
    """An order dearer than the whole limit is refused with no time at which it fits."""
    store = opener()
    refused = await store.spend_take(100, HOUR, 101)
    assert (None, 0, None) == tuple(refused)
    assert 0 == await store.spend_counted(HOUR)


async def test_released_money_stops_counting(opener: Opener) -> None:
    """A released entry frees its room at once; releasing twice changes nothing."""
    store = opener()
    taken = await store.spend_take(100, HOUR, 80)
    assert taken.entry is not None
    await store.spend_release(taken.entry)
    await store.spend_release(taken.entry)
    again = await store.spend_take(100, HOUR, 80)
    assert again.entry is not None
    assert 0 == again.counted
    assert 80 == await store.spend_counted(HOUR)


async def test_a_landed_order_counts_its_actual_price_under_its_activation(
    opener: Opener,
) -> None:
    """Bound to its activation, an entry counts the price the order was sold at, and
    releasing the activation's id frees it."""
    store = opener()
    taken = await store.spend_take(100, HOUR, 90)
    assert taken.entry is not None
    await store.spend_bind(taken.entry, "64a1c0e8d2a1f9b7e45d3b8e", 35)
    assert 35 == await store.spend_counted(HOUR)
    fits = await store.spend_take(100, HOUR, 65)
    assert fits.entry is not None
    await store.spend_release("64a1c0e8d2a1f9b7e45d3b8e")
    assert 65 == await store.spend_counted(HOUR)


async def test_two_owners_share_one_budget(shared: Opener) -> None:
    """Money one process enters is counted by another, and released by it too."""
    one, other = shared(), shared()
    taken = await one.spend_take(100, HOUR, 70)
    refused = await other.spend_take(100, HOUR, 40)
    assert taken.entry is not None
    assert (None, 70) == (refused.entry, refused.counted)
    await other.spend_release(taken.entry)
    assert (await other.spend_take(100, HOUR, 40)).entry is not None


async def test_racing_orders_never_share_the_last_room(shared: Opener) -> None:
    """Twenty orders of 20 from two owners at once against 100: exactly five get in."""
    stores = [shared(), shared()]
    granted: list[str] = []

    async def order(index: int) -> None:
        taken = await stores[index % 2].spend_take(100, HOUR, 20)
        if taken.entry is not None:
            granted.append(taken.entry)

    async with anyio.create_task_group() as group:
        for index in range(20):
            group.start_soon(order, index)
    assert 5 == len(granted)
    assert 100 == await stores[0].spend_counted(HOUR)
