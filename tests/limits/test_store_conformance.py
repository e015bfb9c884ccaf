"""The store conformance suite: every ``KeyStore`` keeps every per-key promise alike.

Each test runs over every store (memory; SQLite in a temporary file; Redis on a real
redis-server), on the real
clock (Redis reads its own) with periods long enough that no token comes back during a
test: nothing here sleeps. The tests of two owners run over the shared stores only (two
stores opened by two backends on one file or server stand for two processes).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from platfone_async import (
    AccountBlockedError,
    RateLimitBackendError,
    RedisBackend,
    SQLiteBackend,
    SystemClock,
)
from platfone_async._ratelimit import InMemoryBackend, KeyStore, RateLimit, for_held_number

from ..fleet._servers import redis_url as _redis_url

pytestmark = pytest.mark.anyio

SCOPE = "0123456789ab@https://api.example.test"
LIMIT = RateLimit(3, 600)

Opener = Callable[..., KeyStore]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real redis-server for the module (CI's, or one started here)."""
    with _redis_url() as url:
        yield url


#: Every store, and those that the processes of a fleet share.
STORES = ["memory", "sqlite", "redis"]
SHARED = ["sqlite", "redis"]


async def _openers(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    if kind == "memory":
        yield lambda: InMemoryBackend(margin=0.0).open_store(SCOPE, SystemClock())
        return
    if kind == "sqlite":
        path = request.getfixturevalue("tmp_path") / "state.db"
        stores: list[KeyStore] = []

        def open_sqlite(**options: Any) -> KeyStore:
            stores.append(SQLiteBackend(path, **options).open_store(SCOPE, SystemClock()))
            return stores[-1]

        yield open_sqlite
        for store in stores:
            await store.aclose()
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"conf-{uuid.uuid4().hex[:12]}"
    backends: list[RedisBackend] = []

    opened: list[KeyStore] = []

    def open_redis(**options: Any) -> KeyStore:
        backend = RedisBackend.from_url(url, prefix=prefix, **options)
        backends.append(backend)
        opened.append(backend.open_store(SCOPE, SystemClock()))
        return opened[-1]

    yield open_redis
    for store in opened:
        await store.aclose()
    for backend in backends:
        await backend.aclose()


@pytest.fixture(params=STORES)
async def opener(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    """Opens stores of one key: each memory store alone; Redis stores on one prefix share."""
    async for opened in _openers(request.param, request):
        yield opened


@pytest.fixture(params=SHARED)
async def shared(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    """Opens stores of one key that share their state (two stand for two processes)."""
    async for opened in _openers(request.param, request):
        yield opened


# -- windows ---------------------------------------------------------------------------


async def test_a_window_grants_its_calls_then_says_how_long_to_wait(opener: Opener) -> None:
    """Up to ``calls`` tokens are granted (several at once), then none, with a positive
    wait no longer than the period."""
    store = opener()
    first = await store.window_take("get_balance", LIMIT, 2)
    second = await store.window_take("get_balance", LIMIT, 5)
    refused = await store.window_take("get_balance", LIMIT, 1)
    assert (2, 1, 0) == (len(first.granted), len(second.granted), len(refused.granted))
    # All three are in flight: the wait is open (memory) or the poll (Redis).
    assert refused.retry_in is None or 0 < refused.retry_in <= LIMIT.period


async def test_a_spent_token_comes_back_after_the_period_an_unspent_one_at_once(
    opener: Opener,
) -> None:
    """A token returned spent stays counted for the period; returned unspent, it is free."""
    store = opener()
    (spent, kept, unused) = (await store.window_take("get_price", LIMIT, 3)).granted
    await store.window_return("get_price", LIMIT, spent, spent=True)
    await store.window_return("get_price", LIMIT, unused, spent=False)
    again = await store.window_take("get_price", LIMIT, 3)
    after = await store.window_take("get_price", LIMIT, 1)
    assert (1, 0) == (len(again.granted), len(after.granted))
    assert after.retry_in is not None
    assert 0 < after.retry_in <= LIMIT.period
    snapshot = await store.snapshot({"get_price": LIMIT}, 20)
    window = snapshot.windows["get_price"]
    assert (1, 2, 0) == (window.cooling, window.in_use, window.available)
    del kept


async def test_a_blocked_window_grants_nothing_until_the_block_ends(opener: Opener) -> None:
    """A server 429's block closes the window for its seconds, tokens or not."""
    store = opener()
    await store.window_block("get_services", LIMIT, 30.0)
    refused = await store.window_take("get_services", LIMIT, 1)
    snapshot = await store.snapshot({"get_services": LIMIT}, 20)
    assert 0 == len(refused.granted)
    assert refused.retry_in is not None
    assert 0 < refused.retry_in <= 30.0
    assert 25 < snapshot.windows["get_services"].blocked_for <= 30.0


# -- slots -----------------------------------------------------------------------------


async def test_slots_are_granted_up_to_the_capacity_and_come_back_when_freed(
    opener: Opener,
) -> None:
    """Capacity slots, then none; a released slot and an ended activation's slot come back."""
    store = opener()
    a, b = [(await store.slot_take(2)).granted[0] for _ in range(2)]
    full = await store.slot_take(2)
    await store.slot_bind(a, "act-1", time.time() + 1200)
    await store.slot_release(b)
    (c,) = (await store.slot_take(2)).granted
    still_full = await store.slot_take(2)
    await store.slot_observe("act-1", ended=True, expire_at=None)
    (d,) = (await store.slot_take(2)).granted
    assert ((), (), True) == (full.granted, still_full.granted, len({a, b, c, d}) == 4)
    assert (await store.snapshot({}, 2)).slots.in_use == 2


async def test_a_full_server_counts_what_this_key_does_not_hold_as_taken(
    opener: Opener,
) -> None:
    """After TooManyActivations the slots not held are external: nothing is granted until
    a re-probe is due (a wait is named)."""
    store = opener()
    (held,) = (await store.slot_take(3)).granted
    (refused_order,) = (await store.slot_take(3)).granted
    await store.slots_full(3, refused_order)
    after = await store.slot_take(3)
    snapshot = await store.snapshot({}, 3)
    assert ((), 2, 1) == (after.granted, snapshot.slots.external, snapshot.slots.in_use)
    assert after.retry_in is not None
    assert 0 < after.retry_in <= 10.0
    del held


async def test_a_blocked_account_refuses_slots_until_unblocked(opener: Opener) -> None:
    """An account block is read back with its message and end, refuses slots with
    AccountBlockedError, and is gone once lifted or past."""
    store = opener()
    until = time.time() + 3600
    await store.account_block("low success rate", until)
    blocked = await store.account_read()
    with pytest.raises(AccountBlockedError, match="low success rate"):
        await store.slot_take(20)
    await store.account_unblock()
    lifted = await store.account_read()
    await store.account_block("by hand", None)
    forever = await store.account_read()
    await store.account_block("over", time.time() - 1)
    assert blocked is not None
    assert abs(until - blocked[1]) < 0.01
    assert ("low success rate", None, ("by hand", math.inf), None) == (
        blocked[0],
        lifted,
        forever,
        await store.account_read(),
    )


# -- success rate, claims, flights -----------------------------------------------------


async def test_the_success_rate_counts_orders_and_first_sms_of_ordered_ones(
    opener: Opener,
) -> None:
    """Orders count once each; an SMS counts once, and only for an order recorded here."""
    store = opener()
    for activation_id in ("a", "b", "a"):
        await store.record_order(activation_id)
    for activation_id in ("a", "a", "stranger"):
        await store.record_sms(activation_id)
    assert (2, 1) == await store.success_counts()


async def test_an_id_is_claimed_once(opener: Opener) -> None:
    """The first claim of an id wins; later ones are refused; ``known`` names claimed ids."""
    store = opener()
    first = await store.claim(["x", "y"])
    second = await store.claim(["y", "z"])
    assert ([True, True], [False, True], {"x", "z"}) == (
        first,
        second,
        await store.known(["x", "z", "never"]),
    )


async def test_an_owners_own_flights_are_neither_elsewhere_nor_orphaned(opener: Opener) -> None:
    """A flight started and ended by one live owner never shows as another's, nor as an
    orphan."""
    store = opener()
    flight = await store.flight_start("telegram|uk|")
    during = (await store.flights_elsewhere(), await store.flights_orphaned())
    await store.flight_end(flight)
    after = (await store.flights_elsewhere(), await store.flights_orphaned())
    assert (([], []), ([], [])) == (during, after)


# -- two owners on one shared store ----------------------------------------------------


async def test_two_owners_share_windows_slots_claims_and_blocks(shared: Opener) -> None:
    """What one owner takes, claims or blocks, the other sees."""
    one, other = shared(), shared()
    await one.window_take("get_balance", LIMIT, 3)
    await one.slot_take(1)
    await one.claim(["act-9"])
    await one.account_block("seen by one", time.time() + 60)
    window = await other.window_take("get_balance", LIMIT, 1)
    blocked = await other.account_read()
    await other.account_unblock()
    slot = await other.slot_take(1)
    assert ((), (), [False]) == (window.granted, slot.granted, await other.claim(["act-9"]))
    assert blocked is not None
    assert "seen by one" == blocked[0]


async def test_another_owners_flight_is_seen_until_it_lands(shared: Opener) -> None:
    """An order in flight of one live owner is in the other's ``flights_elsewhere`` (and
    is no orphan) until it lands."""
    one, other = shared(), shared()
    flight = await one.flight_start("telegram|uk|25")
    during = (await other.flights_elsewhere(), await other.flights_orphaned())
    await one.flight_end(flight)
    assert ((["telegram|uk|25"], []), []) == (during, await other.flights_elsewhere())


@pytest.mark.parametrize("shared", ["redis"], indirect=True)
async def test_a_store_that_lost_its_state_holds_every_window_full_for_a_period(
    shared: Opener, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A server restarted without persistence (its keys gone) is noticed by an owner that
    saw it before: no token for one period, and a WARNING; a new owner is held too."""
    import redis

    store = shared()
    assert 1 == len((await store.window_take("get_balance", LIMIT, 1)).granted)
    flusher = redis.Redis.from_url(redis_url)
    try:
        flusher.flushdb()
    finally:
        flusher.close()
    with caplog.at_level(logging.WARNING, logger="platfone_async"):
        held = await store.window_take("get_balance", LIMIT, 1)
    newcomer = await shared().window_take("get_price", LIMIT, 1)
    assert ((), ()) == (held.granted, newcomer.granted)
    assert held.retry_in is not None
    assert 0 < held.retry_in
    assert "lost its state" in caplog.text


async def test_a_lapsed_owners_flights_and_claims_stop_counting(shared: Opener) -> None:
    """An owner that stops renewing its lease (a dead process) counts no more once the
    lease ends - its flight is no one's but an orphan, its claim is taken over - while a
    live owner's heartbeat keeps its own counting (lease 0.3 s; real time: the store
    keeps the time)."""
    dead, alive, observer = (shared(lease=0.3) for _ in range(3))
    await dead.flight_start("telegram|uk|")
    await dead.claim(["act-1"])
    await alive.flight_start("telegram|de|")
    before = (sorted(await observer.flights_elsewhere()), await observer.flights_orphaned())
    await dead.aclose()  # its heartbeat stops, as a killed process's does
    await anyio.sleep(0.6)
    assert ((["telegram|de|", "telegram|uk|"], []), ["telegram|de|"], ["telegram|uk|"]) == (
        before,
        await observer.flights_elsewhere(),
        await observer.flights_orphaned(),
    )
    assert (set(), [True]) == (await observer.known(["act-1"]), await alive.claim(["act-1"]))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_failing_store_stops_new_work_but_not_the_watch_of_a_held_number(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The store unreachable: a take raises RateLimitBackendError, unless it serves a
    number already open (``for_held_number``) - that one goes on under in-process
    limits, said once."""
    backend: SQLiteBackend | RedisBackend
    if kind == "sqlite":
        backend = SQLiteBackend(tmp_path / "no such directory" / "state.db")
    else:
        backend = RedisBackend.from_url("redis://127.0.0.1:1/0", timeout=0.5)  # no one there
    store = backend.open_store(SCOPE, SystemClock())
    with pytest.raises(RateLimitBackendError):
        await store.window_take("get_activation", LIMIT, 1)
    with caplog.at_level(logging.WARNING, logger="platfone_async"), for_held_number():
        polls = [await store.window_take("get_activation", LIMIT, 1) for _ in range(2)]
    await backend.aclose()
    assert [1, 1] == [len(poll.granted) for poll in polls]
    assert 1 == caplog.text.count("numbers already open are watched")
