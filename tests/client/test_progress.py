"""wait_for_sms(progress=...): a line rewritten in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import re

import pytest

from platfone_async import (
    Activation,
    InvalidParameterError,
    Platfone,
    WaitTimeoutError,
)
from platfone_async.testing import PlatfoneEmulator, SmsPolicy, VirtualClock


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _emulator(clock: VirtualClock, delay: float | None = 25.0) -> PlatfoneEmulator:
    policy = None if delay is None else SmsPolicy(delay=delay)
    return PlatfoneEmulator(clock=clock, sms_policy=policy, rate_limits=None)


def _countdowns(text: str) -> list[str]:
    return re.findall(r"\(in (\d+:\d\d)\)", text)


@pytest.mark.anyio
async def test_on_a_terminal_one_line_counts_down_and_ends_with_the_code() -> None:
    """Every second the same line is rewritten (\\r) with less time left; the code ends it."""
    clock = VirtualClock()
    emulator = _emulator(clock)
    async with clock.autojump(), emulator.client() as client:
        activation = await client.create_activation("telegram", "uk")
        stream = Terminal()
        state = await client.wait_for_sms(activation, progress=stream)
    text = stream.getvalue()
    countdowns = _countdowns(text)
    last_frame = text.split("\r")[-1]
    assert f"+{activation.phone}  telegram/uk  smsReceived  code {state.sms_code}" == (
        last_frame.rstrip()
    )
    assert text.endswith("\n")
    assert 1 == text.count("\n")  # one line, rewritten in place
    assert text.count("\r") >= 25  # at least one frame a second for the 25 s wait
    assert "19:59" == countdowns[0] or "20:00" == countdowns[0]
    assert sorted(countdowns, reverse=True) == countdowns
    assert len(set(countdowns)) >= 25
    assert f"+{activation.phone}  telegram/uk  smsRequested  expires " in text


@pytest.mark.anyio
async def test_on_a_pipe_a_plain_line_per_change() -> None:
    """Not a terminal: one line for the first state, one for the code, no \\r."""
    clock = VirtualClock()
    emulator = _emulator(clock)
    async with clock.autojump(), emulator.client() as client:
        activation = await client.create_activation("telegram", "uk")
        stream = io.StringIO()
        state = await client.wait_for_sms(activation, progress=stream)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert 2 == len(lines)
    assert "smsRequested" in lines[0]
    expires = activation.expire_at.astimezone()
    assert f"expires {expires:%H:%M:%S} {expires:%Z} (in " in lines[0]  # local, zoned
    assert f"+{activation.phone}  telegram/uk  smsReceived  code {state.sms_code}" == lines[1]


@pytest.mark.anyio
async def test_a_timeout_ends_the_line_saying_so() -> None:
    """No SMS within the timeout: the line ends with "no SMS in time", and it raises."""
    clock = VirtualClock()
    emulator = _emulator(clock, delay=None)
    async with clock.autojump(), emulator.client() as client:
        activation = await client.create_activation("telegram", "uk")
        stream = Terminal()
        with pytest.raises(WaitTimeoutError):
            await client.wait_for_sms(activation, timeout=5, progress=stream)
    assert stream.getvalue().endswith("- no SMS in time\n")


@pytest.mark.anyio
async def test_a_callable_gets_every_state_and_a_session_shows_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A callable sees each state; the session's ``progress=True`` writes to stderr."""
    clock = VirtualClock()
    emulator = _emulator(clock)
    seen: list[Activation] = []
    async with clock.autojump(), emulator.client() as client:
        activation = await client.create_activation("telegram", "uk")
        await client.wait_for_sms(activation, progress=seen.append)
        async with client.activation("telegram", "uk") as session:
            state = await session.wait_for_sms(progress=True)
    assert ["smsRequested", "smsReceived"] == [str(s.sms_status) for s in seen]
    assert f"code {state.sms_code}" in capsys.readouterr().err


@pytest.mark.anyio
async def test_a_bad_progress_value_is_refused_before_any_request() -> None:
    """``progress=5`` is an InvalidParameterError, and nothing is polled."""
    clock = VirtualClock()
    emulator = _emulator(clock)
    async with clock.autojump(), emulator.client() as client:
        activation = await client.create_activation("telegram", "uk")
        with pytest.raises(InvalidParameterError, match="progress"):
            await client.wait_for_sms(activation, progress=5)  # type: ignore[arg-type]
    assert 0 == emulator.request_count("get_activation")


def test_the_sync_client_shows_progress_too(capsys: pytest.CaptureFixture[str]) -> None:
    """``Platfone.wait_for_sms(..., progress=True)`` (a notebook's call) shows the code."""
    emulator = PlatfoneEmulator(sms_policy=SmsPolicy(delay=0), rate_limits=None)
    with Platfone(
        emulator.api_key,
        base_url=emulator.base_url,
        http_client=emulator.http_client(),
        rate_limits=None,
    ) as client:
        activation = client.create_activation("telegram", "uk")
        state = client.wait_for_sms(activation, progress=True)
    assert f"code {state.sms_code}" in capsys.readouterr().err
