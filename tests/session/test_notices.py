"""An interrupted session is never silent: it says at once what it will do, and when.

The first interruption here is a cancellation (what Ctrl-C is under ``asyncio.run``);
two real SIGINTs to real processes are in ``tests/session/test_interrupt_process.py``.
"""

from __future__ import annotations

import logging

import anyio
import pytest

from platfone_async import ActivationSession, AsyncPlatfone, SessionOutcome, WaitTimeoutError
from platfone_async._progress import local_time
from platfone_async.testing import Offer, PlatfoneEmulator, SmsPolicy, VirtualClock


def _emulator(clock: VirtualClock, cancel_after: int | None) -> PlatfoneEmulator:
    emulator = PlatfoneEmulator(clock=clock, rate_limits=None)
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=50, cancel_after=cancel_after)])
    return emulator


def _hhmmss(timestamp: float) -> str:
    return local_time(timestamp)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def _interrupted_wait(
    clock: VirtualClock, client: AsyncPlatfone, after: float = 5.0
) -> tuple[ActivationSession, float]:
    """A session whose wait for the SMS is cancelled ``after`` seconds in: (it, when)."""
    when: list[float] = []

    async def interrupt(scope: anyio.CancelScope) -> None:
        await clock.sleep(after)
        when.append(clock.time())
        scope.cancel()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg, client.activation("telegram", "uk") as session:
            tg.start_soon(interrupt, scope)
            await session.wait_for_sms()
    return session, when[0]


@pytest.mark.anyio
async def test_an_interrupted_wait_says_when_it_will_cancel_then_that_it_did(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cancelled 2 minutes before the number may be cancelled: the session says so at
    once (when, in how long, and how to leave it), waits, cancels, and says that too."""
    clock = VirtualClock()
    emulator = _emulator(clock, cancel_after=120)
    async with clock.autojump(), emulator.client() as client:
        session, started = await _interrupted_wait(clock, client)
    activation = session.activation
    assert activation.cancelable_after is not None
    cancel_at = activation.cancelable_after.timestamp() + 1.0  # the session's margin
    phone = f"+{activation.phone}"
    assert [
        (
            f"cancelling {phone} at {_hhmmss(cancel_at)}, in {round(cancel_at - started)} s; "
            "Ctrl-C again to leave it to expire - its reserved price is released then"
        ),
        f"cancelled {phone}; its reserved price is released",
    ] == _warnings(caplog)
    assert SessionOutcome.CANCELED == session.outcome
    assert "canceled" == emulator.activation(activation.activation_id)["activation_status"]


@pytest.mark.anyio
async def test_an_interrupted_wait_that_can_cancel_at_once_says_what_it_did(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the number may be cancelled already, there is no wait to announce: one line."""
    clock = VirtualClock()
    emulator = _emulator(clock, cancel_after=0)
    async with clock.autojump(), emulator.client() as client:
        session, _ = await _interrupted_wait(clock, client)
    assert [f"cancelled +{session.activation.phone}; its reserved price is released"] == (
        _warnings(caplog)
    )


@pytest.mark.anyio
async def test_a_number_that_cannot_be_cancelled_is_said_to_be_left_to_expire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No ``cancelable_after`` at all: interrupted, it says it leaves the number to expire."""
    clock = VirtualClock()
    emulator = _emulator(clock, cancel_after=None)
    async with clock.autojump(), emulator.client() as client:
        session, _ = await _interrupted_wait(clock, client)
    expires = _hhmmss(session.activation.expire_at.timestamp())
    expected = (
        f"left +{session.activation.phone} to expire at {expires}; "
        "its reserved price is released then"
    )
    assert [expected] == _warnings(caplog)
    assert SessionOutcome.LEFT_TO_EXPIRE == session.outcome


@pytest.mark.anyio
async def test_a_timeout_announces_the_wait_for_the_cancel_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not interrupted (a WaitTimeoutError ends the block): the wait before the cancel is
    announced all the same ("Ctrl-C to leave it"), and the outcome is not (debug only)."""
    clock = VirtualClock()
    emulator = _emulator(clock, cancel_after=120)
    async with clock.autojump(), emulator.client() as client:
        with pytest.raises(WaitTimeoutError):
            async with client.activation("telegram", "uk") as session:
                await session.wait_for_sms(timeout=30)
    messages = _warnings(caplog)
    assert 1 == len(messages)
    assert messages[0].startswith(f"cancelling +{session.activation.phone} at ")
    assert messages[0].endswith(
        "s; Ctrl-C to leave it to expire - its reserved price is released then"
    )
    assert SessionOutcome.CANCELED == session.outcome


@pytest.mark.anyio
async def test_an_interrupted_wait_whose_sms_comes_late_says_it_was_finalized(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cancelled at 5 s, the SMS at 40 s while the session waits to cancel: it says the
    code came late (billed), then that it finalized the number, with the code."""
    clock = VirtualClock()
    emulator = _emulator(clock, cancel_after=120)
    emulator.set_sms_policy(SmsPolicy(delay=40, text="code {code}"))
    async with clock.autojump(), emulator.client() as client:
        session, _ = await _interrupted_wait(clock, client)
    phone, code = f"+{session.activation.phone}", session.activation.sms_code
    assert code
    assert [
        f"a code arrived late for {phone}: {code} (billed)",
        f"finalized {phone} (it got its SMS: {code})",
    ] == _warnings(caplog)[1:]
    assert SessionOutcome.FINALIZED == session.outcome
