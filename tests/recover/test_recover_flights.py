"""``recover()`` in-process, on virtual time, for an order whose answer never arrived:
the process died with the order in the air, so no journal entry names its number; its
flight, kept in the SQLite file, leads recovery to the number in the history. (Real
processes killed with SIGKILL mid-order: ``test_recover_processes.py``.)"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from platfone_async import (
    Activation,
    ActiveActivationsLimitError,
    AsyncPlatfone,
    SessionOutcome,
    Settled,
    SQLiteBackend,
)
from platfone_async._ratelimit import Flight, KeyStore, key_fingerprint
from platfone_async._recover import FLIGHT_REACH
from platfone_async.testing import PlatfoneEmulator, VirtualClock

from ._support import EMULATOR

pytestmark = [pytest.mark.anyio, EMULATOR]

LEASE = 30.0


def store_of(emulator: PlatfoneEmulator, path: Path, lease: float) -> KeyStore:
    """The key's store as another process opens it on ``path`` (another owner)."""
    scope = f"{key_fingerprint(emulator.api_key)}@{emulator.base_url.rstrip('/')}"
    return SQLiteBackend(path, lease=lease).open_store(scope, emulator.clock)  # type: ignore[arg-type]


async def order_in_flight_of_a_dead_owner(emulator: PlatfoneEmulator, path: Path) -> None:
    """A process on ``path`` takes a slot and starts an order's flight holding it,
    then dies (its heartbeat stops, as a SIGKILL stops it): its lease lapses ``LEASE``
    clock seconds later."""
    dead = store_of(emulator, path, LEASE)
    (slot,) = (await dead.slot_take(1)).granted
    await dead.flight_start("telegram|uk|", slot)
    await dead.aclose()


async def orders_without_waiting(client: AsyncPlatfone, count: int) -> list[str]:
    """``count`` orders that do not wait for a slot: "opened", or the error's name."""
    outcomes = []
    for _ in range(count):
        try:
            await client.create_activation("telegram", "uk", wait_for_slot=False)
            outcomes.append("opened")
        except ActiveActivationsLimitError as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


async def orders_around_recover(
    emulator: PlatfoneEmulator, clock: VirtualClock, path: Path, capacity: int
) -> tuple[list[str], list[Settled], list[str]]:
    """A survivor on ``path`` with ``capacity`` slots: ``capacity`` orders without
    waiting, recover(), as many orders again (see :func:`orders_without_waiting`)."""
    async with (
        clock.autojump(),
        emulator.client(
            rate_limits=None, limits_backend=SQLiteBackend(path), max_active_activations=capacity
        ) as survivor,
    ):
        before = await orders_without_waiting(survivor, capacity)
        settled = await survivor.recover(interval=1)
        return before, settled, await orders_without_waiting(survivor, capacity)


async def placed_behind_the_sdk(emulator: PlatfoneEmulator) -> Activation:
    """A number ordered on the key that no journal names (the dead order's, or a stranger's)."""
    async with emulator.client(rate_limits=None) as other:
        return await other.create_activation("telegram", "uk")


def status(emulator: PlatfoneEmulator, activation_id: str) -> str:
    return str(emulator.activation(activation_id)["activation_status"])


async def test_recover_cancels_the_number_of_an_order_whose_answer_never_came(
    emulator: PlatfoneEmulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """The dead process's order placed a number; a live process on the file ordered two
    of the same offer just after (one answered and claimed, one journaled too).
    open_activations() lists the orphan's number (lapsed, the dead owner's) beside the
    journaled one; recover() cancels it (once ``cancelable_after`` allows) and ends the
    flight; the live numbers stay open."""
    path = tmp_path / "state.db"
    await order_in_flight_of_a_dead_owner(emulator, path)
    orphan = (await placed_behind_the_sdk(emulator)).activation_id
    live = store_of(emulator, path, 3600)  # a live process, which ordered two numbers since:
    answered, opened = [await placed_behind_the_sdk(emulator) for _ in range(2)]
    await live.claim([answered.activation_id])  # one answered (not journaled yet)
    await live.claim([opened.activation_id])
    await live.journal_put(opened.activation_id, opened.to_json(), opened.expire_at.timestamp())
    kept = {answered.activation_id, opened.activation_id}
    clock.advance(LEASE + 1)
    async with (
        clock.autojump(),
        emulator.client(rate_limits=None, limits_backend=SQLiteBackend(path)) as survivor,
    ):
        listed = {
            o.activation.activation_id: (o.alive, o.mine) for o in await survivor.open_activations()
        }
        (settled,) = await survivor.recover(interval=1)
        flights = await survivor._http.limits.flights()
        after = [o.activation.activation_id for o in await survivor.open_activations()]
    await live.aclose()
    assert {orphan: (False, False), opened.activation_id: (True, False)} == listed
    assert (orphan, SessionOutcome.CANCELED) == (settled.activation.activation_id, settled.outcome)
    assert "canceled" == status(emulator, orphan)
    assert ["active", "active"] == [status(emulator, aid) for aid in sorted(kept)]
    assert ([], [opened.activation_id]) == (flights, after)


async def test_a_code_that_came_to_the_orphans_number_is_delivered(
    emulator: PlatfoneEmulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """An SMS reached the number after its process died: recover() finalizes it and gives
    the code to on_late_sms."""
    path = tmp_path / "state.db"
    await order_in_flight_of_a_dead_owner(emulator, path)
    orphan = (await placed_behind_the_sdk(emulator)).activation_id
    emulator.deliver_sms(orphan, "515151")
    clock.advance(LEASE + 1)
    late: list[str | None] = []
    async with (
        clock.autojump(),
        emulator.client(
            rate_limits=None,
            limits_backend=SQLiteBackend(path),
            on_late_sms=lambda a: late.append(a.sms_code),
        ) as survivor,
    ):
        (settled,) = await survivor.recover(interval=1)
    assert (SessionOutcome.FINALIZED, "515151") == (settled.outcome, settled.activation.sms_code)
    assert (["515151"], "finalized") == (late, status(emulator, orphan))


async def test_two_numbers_for_one_order_are_named_and_left_open(
    emulator: PlatfoneEmulator,
    clock: VirtualClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two numbers no process holds in the window of the one order that died in flight:
    one is someone else's and which cannot be told; recover() takes neither, a WARNING
    names both, and both stay open."""
    path = tmp_path / "state.db"
    await order_in_flight_of_a_dead_owner(emulator, path)
    numbers = [(await placed_behind_the_sdk(emulator)).activation_id for _ in range(2)]
    clock.advance(LEASE + 1)
    with caplog.at_level(logging.WARNING, logger="platfone_async"):
        async with (
            clock.autojump(),
            emulator.client(rate_limits=None, limits_backend=SQLiteBackend(path)) as survivor,
        ):
            settled = await survivor.recover(interval=1)
            listed = await survivor.open_activations()
    assert ([], []) == (settled, listed)
    assert ["active", "active"] == [status(emulator, n) for n in numbers]
    assert all(n in caplog.text for n in numbers)
    assert "cannot tell which" in caplog.text


async def test_an_order_that_placed_nothing_is_dropped_once_its_window_passed(
    emulator: PlatfoneEmulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """No number in the history for the dead order: while its window is open the flight
    stays (a number may still show); once a recovery reads the history after it, it is
    dropped."""
    path = tmp_path / "state.db"
    await order_in_flight_of_a_dead_owner(emulator, path)
    clock.advance(LEASE + 1)
    client: AsyncPlatfone
    async with (
        clock.autojump(),
        emulator.client(rate_limits=None, limits_backend=SQLiteBackend(path)) as client,
    ):
        early = (await client.recover(), len(await client._http.limits.flights()))
        clock.advance(FLIGHT_REACH)
        late = (await client.recover(), len(await client._http.limits.flights()))
    assert (([], 1), ([], 0)) == (early, late)


async def test_the_dead_orders_slot_comes_back_as_recover_cancels_its_number(
    emulator: PlatfoneEmulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """The dead order's pending slot is bound to the number recover() takes over, so its
    cancel frees the slot at once: of 2 slots, the survivor gets 1 before recover() and
    another right after it (not once the order's 30-minute pending hold has passed)."""
    path = tmp_path / "state.db"
    await order_in_flight_of_a_dead_owner(emulator, path)
    await placed_behind_the_sdk(emulator)
    clock.advance(LEASE + 1)
    before, (settled,), after = await orders_around_recover(emulator, clock, path, 2)
    assert ["opened", "ActiveActivationsLimitError"] == before
    assert SessionOutcome.CANCELED == settled.outcome
    assert ["opened", "ActiveActivationsLimitError"] == after


async def test_the_slot_of_a_dead_order_that_placed_nothing_comes_back_at_once(
    emulator: PlatfoneEmulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """A dead order that placed nothing holds its slot until a recovery sees its window
    pass with no number of its own; then the slot is free at once (capacity 1)."""
    path = tmp_path / "state.db"
    await order_in_flight_of_a_dead_owner(emulator, path)
    clock.advance(LEASE + FLIGHT_REACH)
    before, settled, after = await orders_around_recover(emulator, clock, path, 1)
    assert (["ActiveActivationsLimitError"], [], ["opened"]) == (before, settled, after)


class _SeesTheFlight(httpx.AsyncBaseTransport):
    """As an order arrives, lists the key's flights from another owner's store, and frees
    the slot the flight names there (as a recovery would) to show it is the order's."""

    def __init__(self, inner: httpx.AsyncBaseTransport, other: KeyStore) -> None:
        self.inner = inner
        self.other = other
        self.seen: list[tuple[Flight, int, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            (flight,) = await self.other.flights_list()
            held = (await self.other.snapshot({}, 20)).slots.in_use
            assert flight.slot is not None
            await self.other.slot_release(flight.slot)
            after = (await self.other.snapshot({}, 20)).slots.in_use
            self.seen.append((flight, held, after))
        return await self.inner.handle_async_request(request)


async def test_an_orders_flight_names_the_slot_it_holds(
    emulator: PlatfoneEmulator, tmp_path: Path
) -> None:
    """While create_activation's request is in the air, its flight names the pending slot
    the order holds: freeing that member frees the order's slot (1 held, then 0)."""
    path = tmp_path / "state.db"
    other = store_of(emulator, path, LEASE)
    transport = _SeesTheFlight(httpx.ASGITransport(app=emulator.app), other)
    http = httpx.AsyncClient(transport=transport, base_url=emulator.base_url)
    async with AsyncPlatfone(
        emulator.api_key,
        base_url=emulator.base_url,
        http_client=http,
        clock=emulator.clock,  # type: ignore[arg-type]
        rate_limits=None,
        limits_backend=SQLiteBackend(path),
    ) as client:
        await client.create_activation("telegram", "uk")
    await other.aclose()
    ((flight, held, after),) = transport.seen
    assert ("telegram|uk|", True, 1, 0) == (flight.offer, flight.alive, held, after)
