"""The journal kept through the client: every number an order opens is journaled, kept
true from each state read, and taken out once seen to end; ``open_activations()`` lists
it (in memory, and in a SQLite file another owner shares)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from platfone_async import AsyncPlatfone, OpenActivation, SQLiteBackend
from platfone_async._ratelimit import KeyStore
from platfone_async.testing import PlatfoneEmulator, SmsPolicy, VirtualClock

from ._support import EMULATOR

pytestmark = [pytest.mark.anyio, EMULATOR]


@pytest.fixture(params=["memory", "sqlite"])
async def client(
    request: pytest.FixtureRequest, emulator: PlatfoneEmulator, tmp_path: Path
) -> AsyncIterator[AsyncPlatfone]:
    """A client of the emulator on the memory store, or on a SQLite file."""
    backend = SQLiteBackend(tmp_path / "state.db") if request.param == "sqlite" else None
    async with emulator.client(rate_limits=None, limits_backend=backend) as opened:
        yield opened


def other_owner(client: AsyncPlatfone, path: Path) -> KeyStore:
    """The key's store as another process opens it (another owner) on the same file."""
    limits = client._http.limits
    scope = f"{limits.key}@{limits.base_url}"
    return SQLiteBackend(path).open_store(scope, client.clock)


def ids(found: list[OpenActivation]) -> list[str]:
    return [o.activation.activation_id for o in found]


async def test_an_order_is_journaled_as_this_processs_and_alive(client: AsyncPlatfone) -> None:
    """A number just ordered is listed with its state, held by this process, alive."""
    activation = await client.create_activation("telegram", "uk")
    (found,) = await client.open_activations()
    assert (activation, True, True, False) == (
        found.activation,
        found.mine,
        found.alive,
        found.lapsed,
    )


async def test_a_state_read_is_journaled_and_a_finalize_takes_it_out(
    client: AsyncPlatfone, emulator: PlatfoneEmulator
) -> None:
    """The code read by get_activation is in the journal; finalizing ends the entry."""
    activation = await client.create_activation("telegram", "uk")
    emulator.deliver_sms(activation.activation_id, "424242")
    await client.get_activation(activation)
    (found,) = await client.open_activations()
    await client.finalize_activation(activation)
    assert ("424242", []) == (found.activation.sms_code, await client.open_activations())


async def test_a_cancel_takes_it_out(client: AsyncPlatfone, clock: VirtualClock) -> None:
    """A cancelled number leaves the journal; the other stays."""
    first = await client.create_activation("telegram", "uk")
    second = await client.create_activation("telegram", "uk")
    assert first.cancelable_after is not None
    clock.advance(first.cancelable_after.timestamp() - clock.time() + 1)
    await client.cancel_activation(first)
    assert [second.activation_id] == ids(await client.open_activations())


async def test_an_end_seen_in_the_history_takes_it_out(
    client: AsyncPlatfone, emulator: PlatfoneEmulator
) -> None:
    """A number that expired, seen as such in a page of the history, leaves the journal."""
    activation = await client.create_activation("telegram", "uk")
    emulator.expire(activation.activation_id)
    await client.get_activation_history()
    assert [] == await client.open_activations()


async def test_a_session_leaves_nothing_journaled(
    client: AsyncPlatfone, emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A session that got its code and was finalized on leaving is out of the journal."""
    emulator.set_sms_policy(SmsPolicy(delay=5))
    async with clock.autojump(), client.activation("telegram", "uk") as session:
        await session.wait_for_sms(interval=1)
        during = ids(await client.open_activations())
    assert ([session.activation.activation_id], []) == (during, await client.open_activations())


@pytest.mark.parametrize("client", ["sqlite"], indirect=True)
async def test_another_owner_on_the_file_sees_the_number_alive_and_not_its_own(
    client: AsyncPlatfone, tmp_path: Path
) -> None:
    """Another process on the same SQLite file lists this one's number as alive, and
    cannot take it over while this process lives."""
    activation = await client.create_activation("telegram", "uk")
    other = other_owner(client, tmp_path / "state.db")
    try:
        (entry,) = await other.journal_list()
        taken = await other.journal_take([activation.activation_id])
    finally:
        await other.aclose()
    (mine,) = await client.open_activations()
    assert (activation.activation_id, mine.owner, True) == (
        entry.activation_id,
        entry.owner,
        entry.alive,
    )
    assert [False] == taken
