"""``recover()`` in-process, on virtual time: the numbers of an owner whose lease lapsed
are taken over and settled as a session would - finalized with their code, cancelled
once allowed - and leave the journal. (Real processes killed with SIGKILL:
``test_recover_processes.py``.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from platfone_async import Activation, AsyncPlatfone, SessionOutcome, SQLiteBackend
from platfone_async._ratelimit import key_fingerprint
from platfone_async.testing import PlatfoneEmulator, VirtualClock

from ._support import EMULATOR

pytestmark = [pytest.mark.anyio, EMULATOR]

LEASE = 30.0


async def journal_of_a_dead_owner(
    emulator: PlatfoneEmulator, path: Path, activations: list[Activation]
) -> None:
    """Journal ``activations`` as a process on ``path`` does, then stop its heartbeat
    (as a SIGKILL does): its lease lapses ``LEASE`` clock seconds later."""
    scope = f"{key_fingerprint(emulator.api_key)}@{emulator.base_url.rstrip('/')}"
    dead = SQLiteBackend(path, lease=LEASE).open_store(scope, emulator.clock)  # type: ignore[arg-type]
    for activation in activations:
        await dead.journal_put(
            activation.activation_id, activation.to_json(), activation.expire_at.timestamp()
        )
    await dead.aclose()


async def test_recover_finalizes_what_got_a_code_and_cancels_the_rest(
    emulator: PlatfoneEmulator,
    clock: VirtualClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """6 numbers of a dead owner, SMS to 2 after it died: recover() returns the 6, the 2
    finalized with their codes (also to on_late_sms), the 4 cancelled; the journal is
    empty and the emulator agrees; it sums up what it cancelled."""
    async with emulator.client(rate_limits=None) as creator:
        opened = [await creator.create_activation("telegram", "uk") for _ in range(6)]
    await journal_of_a_dead_owner(emulator, tmp_path / "state.db", opened)
    codes = {opened[1].activation_id: "111111", opened[4].activation_id: "444444"}
    for activation_id, code in codes.items():
        emulator.deliver_sms(activation_id, code)
    clock.advance(LEASE + 1)
    late: list[Activation] = []
    backend = SQLiteBackend(tmp_path / "state.db")
    with caplog.at_level(logging.WARNING, logger="platfone_async"):
        async with (
            clock.autojump(),
            emulator.client(
                rate_limits=None, limits_backend=backend, on_late_sms=late.append
            ) as survivor,
        ):
            before = [o.lapsed for o in await survivor.open_activations()]
            settled = await survivor.recover(interval=1)
            after = await survivor.open_activations()
    assert [True] * 6 == before
    assert sorted(a.activation_id for a in opened) == sorted(
        s.activation.activation_id for s in settled
    )
    outcomes = {s.activation.activation_id: s.outcome for s in settled}
    got = {
        s.activation.activation_id: s.activation.sms_code for s in settled if s.activation.sms_code
    }
    assert codes == got
    assert codes == {a.activation_id: a.sms_code for a in late}
    expected = {
        a.activation_id: SessionOutcome.FINALIZED
        if a.activation_id in codes
        else SessionOutcome.CANCELED
        for a in opened
    }
    assert expected == outcomes
    assert {aid: str(o) for aid, o in expected.items()} == {
        aid: emulator.activation(aid)["activation_status"] for aid in expected
    }
    assert [] == after
    assert "2 finalized, 4 cancelled without an SMS" in caplog.text


async def test_recover_delivers_a_code_the_dead_owner_had_already_read(
    emulator: PlatfoneEmulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """The journal holds a state with the code (the dead owner's last poll saw it, but it
    may have died before the code reached anyone): recover() finalizes the number and
    gives the code to on_late_sms all the same."""
    async with emulator.client(rate_limits=None) as creator:
        opened = await creator.create_activation("telegram", "uk")
        emulator.deliver_sms(opened.activation_id, "123456")
        seen = await creator.get_activation(opened.activation_id)
    assert "123456" == seen.sms_code
    await journal_of_a_dead_owner(emulator, tmp_path / "state.db", [seen])
    clock.advance(LEASE + 1)
    late: list[Activation] = []
    backend = SQLiteBackend(tmp_path / "state.db")
    async with (
        clock.autojump(),
        emulator.client(rate_limits=None, limits_backend=backend, on_late_sms=late.append) as c,
    ):
        (settled,) = await c.recover(interval=1)
    assert (SessionOutcome.FINALIZED, "123456") == (settled.outcome, settled.activation.sms_code)
    assert ["123456"] == [a.sms_code for a in late]
    assert "finalized" == emulator.activation(opened.activation_id)["activation_status"]


async def test_recover_takes_nothing_in_memory_or_from_a_live_owner(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """In memory every number is this process's own: recover() returns nothing and
    leaves them open and journaled."""
    async with emulator.client(rate_limits=None) as client:
        activation = await client.create_activation("telegram", "uk")
        settled = await client.recover()
        still = [o.activation.activation_id for o in await client.open_activations()]
    assert ([], [activation.activation_id]) == (settled, still)
    assert "active" == emulator.activation(activation.activation_id)["activation_status"]


async def test_recover_checks_its_interval(emulator: PlatfoneEmulator) -> None:
    """A bad interval is refused before anything is read."""
    from platfone_async import InvalidParameterError

    client: AsyncPlatfone
    async with emulator.client(rate_limits=None) as client:
        with pytest.raises(InvalidParameterError, match="interval"):
            await client.recover(interval=0)
