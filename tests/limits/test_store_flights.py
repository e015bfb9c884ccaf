"""Orders in flight, over every store (the conformance suite's fixtures): each flight
carries its offer and when it left, and a lapsed owner's stays until a recovery ends it.
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
