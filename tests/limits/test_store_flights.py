"""Orders in flight, over every store (the conformance suite's fixtures): each flight
carries its offer, when it left and the slot its order holds, and a lapsed owner's stays
until a recovery ends it (binding its slot to the number it placed, or freeing it).
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from platfone_async import SQLiteBackend
from platfone_async._ratelimit import Flight, InMemoryBackend
from platfone_async.testing import VirtualClock

from .test_store_conformance import SCOPE, Opener, opener, redis_url, shared

__all__ = ["opener", "redis_url", "shared"]  # the fixtures, used by name

pytestmark = pytest.mark.anyio


async def test_a_flight_is_listed_with_its_offer_and_when_it_left_until_it_ends(
    opener: Opener,
) -> None:
    """A flight lists with its name, offer, this owner, alive, and the store's time when
    it started (Redis's clock: within a second of this host's); ended, it is gone."""
    store = opener()
    before = time.time()
    flight = await store.flight_start("telegram|uk|25")
    after = time.time()
    (listed,) = await store.flights_list()
    await store.flight_end(flight)
    assert (flight, "telegram|uk|25", store.owner, True) == (
        listed.name,
        listed.offer,
        listed.owner,
        listed.alive,
    )
    assert before - 1 <= listed.left <= after + 1
    assert [] == await store.flights_list()


async def test_flights_list_oldest_first(opener: Opener) -> None:
    """Two flights list in the order they left."""
    store = opener()
    first = await store.flight_start("telegram|uk|")
    await anyio.sleep(0.01)
    second = await store.flight_start("whatsapp|de|7")
    assert [first, second] == [f.name for f in await store.flights_list()]


async def test_a_lapsed_owners_flight_stays_until_another_owner_ends_it(
    shared: Opener,
) -> None:
    """After its owner's lease lapsed, a flight is listed as not alive by every other
    owner (still orphaned for reconciliation); once one of them ends it (a recovery that
    dealt with it), it is gone for all (lease 0.3 s; real time)."""
    dead, recoverer, observer = (shared(lease=0.3) for _ in range(3))
    flight = await dead.flight_start("telegram|uk|")
    await dead.aclose()  # its heartbeat stops, as a killed process's does
    await anyio.sleep(0.6)
    listed: list[Flight] = await recoverer.flights_list()
    assert [(flight, dead.owner, False)] == [(f.name, f.owner, f.alive) for f in listed]
    assert ["telegram|uk|"] == await observer.flights_orphaned()
    await recoverer.flight_end(flight)
    assert ([], []) == (await observer.flights_list(), await observer.flights_orphaned())


async def test_a_flight_carries_the_slot_its_order_holds(opener: Opener) -> None:
    """A flight started with a slot lists that slot's member; one without, None."""
    store = opener()
    (member,) = (await store.slot_take(20)).granted
    await store.flight_start("telegram|uk|", member)
    await store.flight_start("telegram|de|")
    assert [member, None] == [f.slot for f in await store.flights_list()]


async def lapsed_flight_holding_the_only_slot(shared: Opener) -> tuple[Opener, Flight]:
    """A dead owner's order took the only slot (capacity 1) and left; its lease lapsed
    (0.3 s; real time). Returns an opener of survivors and the flight as they list it."""
    dead = shared(lease=0.3)
    (member,) = (await dead.slot_take(1)).granted
    await dead.flight_start("telegram|uk|", member)
    await dead.aclose()  # its heartbeat stops, as a killed process's does
    await anyio.sleep(0.6)
    survivor = shared()
    (flight,) = await survivor.flights_list()
    assert (False, member) == (flight.alive, flight.slot)
    return shared, flight


async def test_a_lapsed_flights_slot_bound_to_its_number_comes_back_when_it_ends(
    shared: Opener,
) -> None:
    """A recovery binds the lapsed flight's pending slot to the number it placed: the slot
    is then the number's, and seeing the number end frees it for every owner at once."""
    opened, flight = await lapsed_flight_holding_the_only_slot(shared)
    recoverer, other = opened(), opened()
    assert flight.slot is not None
    await recoverer.slot_bind(flight.slot, "4242", time.time() + 1200)
    await recoverer.flight_end(flight.name)
    held = await other.slot_take(1)
    await recoverer.slot_observe("4242", ended=True, expire_at=None)
    freed = await other.slot_take(1)
    assert ((), 1) == (tuple(held.granted), len(freed.granted))


async def test_a_lapsed_flight_that_placed_nothing_frees_its_slot(shared: Opener) -> None:
    """A recovery that finds the lapsed flight placed nothing frees its pending slot: the
    capacity is back for every owner at once, not after the order's pending hold."""
    opened, flight = await lapsed_flight_holding_the_only_slot(shared)
    recoverer, other = opened(), opened()
    assert flight.slot is not None
    held = await other.slot_take(1)
    await recoverer.slot_release(flight.slot)
    await recoverer.flight_end(flight.name)
    freed = await other.slot_take(1)
    assert ((), 1, []) == (tuple(held.granted), len(freed.granted), await other.flights_list())


async def test_another_live_owners_flight_is_listed_alive(shared: Opener) -> None:
    """A live owner's flight is alive in another owner's list, with its owner."""
    one, other = shared(), shared()
    await one.flight_start("telegram|uk|")
    assert [(one.owner, True)] == [(f.owner, f.alive) for f in await other.flights_list()]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_flight_never_ended_is_kept_an_activations_life_not_for_ever(
    kind: str, tmp_path: Path
) -> None:
    """A flight no one ends (its process died) is still listed 25 minutes after it left
    (the number its order may have opened lives 20) and gone 31 minutes after (virtual
    time; Redis keeps its own clock: its hold is the same ``FLIGHT_KEEP``)."""
    clock = VirtualClock()
    store = (
        InMemoryBackend().open_store(SCOPE, clock)
        if kind == "memory"
        else SQLiteBackend(tmp_path / "state.db").open_store(SCOPE, clock)
    )
    flight = await store.flight_start("telegram|uk|")
    clock.advance(25 * 60)
    kept = [f.name for f in await store.flights_list()]
    clock.advance(6 * 60)
    later = await store.flight_start("telegram|uk|")  # the memory store prunes as it adds
    assert ([flight], [later]) == (kept, [f.name for f in await store.flights_list()])
    await store.aclose()


async def test_an_order_landed_binds_claims_journals_counts_and_ends_its_flight(
    shared: Opener,
) -> None:
    """order_landed in one step: the order's slot becomes the number's (capacity 1: no
    other slot; the number's end frees it), the id is claimed (another owner cannot claim
    it), journaled as this owner's, counted as an order, and the flight is gone."""
    store, other = shared(), shared()
    (member,) = (await store.slot_take(1)).granted
    flight = await store.flight_start("telegram|uk|", member)
    claimed = await store.order_landed(flight, member, "4242", '{"id": 1}', time.time() + 1200)
    held = await other.slot_take(1)
    after = (await other.claim(["4242"]), await other.journal_list(), await other.flights_list())
    await other.slot_observe("4242", ended=True, expire_at=None)
    freed = await other.slot_take(1)
    assert (True, (), 1) == (claimed, tuple(held.granted), len(freed.granted))
    assert ([False], [("4242", '{"id": 1}', store.owner, True)], []) == after
    assert (1, 0) == await other.success_counts()


async def test_an_order_landed_on_an_id_claimed_before_says_so(opener: Opener) -> None:
    """An id this owner claimed already (reconciliation found it) lands as not newly
    claimed, and is journaled all the same; without a slot or flight nothing else moves."""
    store = opener()
    await store.claim(["4243"])
    claimed = await store.order_landed(None, None, "4243", "{}", time.time() + 1200)
    assert (False, ["4243"]) == (claimed, [e.activation_id for e in await store.journal_list()])
