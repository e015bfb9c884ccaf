"""The journal of open numbers, over every store (the conformance suite's fixtures).

Every number the SDK opens is journaled with its owner; a number whose owner's lease
lapsed (a dead process) may be taken over, by one owner only. The memory store keeps
its own process's numbers, which are always its own and alive.
"""

from __future__ import annotations

import time

import anyio
import pytest

from platfone_async._ratelimit import KeyStore

from .test_store_conformance import Opener, opener, redis_url, shared

__all__ = ["opener", "redis_url", "shared"]  # the fixtures, used by name

pytestmark = pytest.mark.anyio


def _soon(minutes: float = 20) -> float:
    return time.time() + minutes * 60


async def test_a_put_number_is_listed_as_its_owners_and_alive(opener: Opener) -> None:
    """A journaled number is listed with its record, this store's owner, alive."""
    store = opener()
    await store.journal_put("act-1", '{"sms_status": "smsRequested"}', _soon())
    (entry,) = await store.journal_list()
    assert ("act-1", '{"sms_status": "smsRequested"}', store.owner, True) == entry


async def test_an_update_changes_journaled_numbers_only(opener: Opener) -> None:
    """An update rewrites the record of a journaled number and ignores unknown ids."""
    store = opener()
    await store.journal_put("act-1", "first", _soon())
    await store.journal_update({"act-1": ("second", _soon(10)), "stranger": ("x", _soon())})
    assert [("act-1", "second")] == [
        (e.activation_id, e.record) for e in await store.journal_list()
    ]


async def test_a_removed_number_is_gone_and_removing_twice_is_harmless(opener: Opener) -> None:
    """Removal takes a number out, and removing it again (or an unknown id) does nothing."""
    store = opener()
    await store.journal_put("act-1", "one", _soon())
    await store.journal_put("act-2", "two", _soon())
    await store.journal_remove(["act-1", "never"])
    await store.journal_remove(["act-1"])
    assert ["act-2"] == [e.activation_id for e in await store.journal_list()]


async def test_numbers_long_past_their_expiry_are_dropped(opener: Opener) -> None:
    """A number a day past its ``expire_at`` is dropped; one just expired is kept (its
    code, if billed, is still to be delivered)."""
    store = opener()
    await store.journal_put("ancient", "x", time.time() - 2 * 86_400)
    await store.journal_put("just-expired", "y", time.time() - 60)
    assert ["just-expired"] == [e.activation_id for e in await store.journal_list()]


async def test_a_live_owners_numbers_cannot_be_taken(opener: Opener) -> None:
    """Taking an own number says True (it is this owner's); an unknown id False."""
    store = opener()
    await store.journal_put("act-1", "x", _soon())
    assert [True, False] == await store.journal_take(["act-1", "never"])


async def test_another_live_owners_numbers_are_listed_alive_and_not_taken(
    shared: Opener,
) -> None:
    """One owner's numbers are seen by the other as alive, with their owner, and cannot
    be taken over while the owner's lease runs."""
    one, other = shared(), shared()
    await one.journal_put("act-1", "x", _soon())
    listed = await other.journal_list()
    assert [("act-1", one.owner, True)] == [(e.activation_id, e.owner, e.alive) for e in listed]
    assert [False] == await other.journal_take(["act-1"])


async def test_another_owner_sees_updates_and_removals(shared: Opener) -> None:
    """A state one owner writes (or a removal) is what the other lists."""
    one, other = shared(), shared()
    await one.journal_put("act-1", "first", _soon())
    await one.journal_put("act-2", "first", _soon())
    await other.journal_update({"act-1": ("seen by the other", _soon())})
    await other.journal_remove(["act-2"])
    assert [("act-1", "seen by the other", one.owner)] == [
        (e.activation_id, e.record, e.owner) for e in await one.journal_list()
    ]


async def test_a_lapsed_owners_numbers_are_taken_over_by_exactly_one(shared: Opener) -> None:
    """After an owner's lease lapses (its heartbeat stopped, as a killed process's), its
    numbers list as lapsed; of two survivors taking them at once, each number goes to
    exactly one, which then holds it alive (lease 0.3 s; real time)."""
    dead, first, second = (shared(lease=0.3) for _ in range(3))
    ids = [f"act-{i}" for i in range(6)]
    for activation_id in ids:
        await dead.journal_put(activation_id, "x", _soon())
    await dead.aclose()  # its heartbeat stops
    await anyio.sleep(0.6)
    lapsed = await first.journal_list()
    assert [False] * 6 == [e.alive for e in lapsed]
    taken: dict[str, list[bool]] = {}

    async def take(store: KeyStore) -> None:
        taken[store.owner] = await store.journal_take(ids)

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, first)
        tg.start_soon(take, second)
    by_first, by_second = taken[first.owner], taken[second.owner]
    assert [1] * 6 == [a + b for a, b in zip(by_first, by_second, strict=True)]
    expected = {
        aid: (first.owner if mine else second.owner, True)
        for aid, mine in zip(ids, by_first, strict=True)
    }
    listed = {e.activation_id: (e.owner, e.alive) for e in await first.journal_list()}
    assert expected == listed
