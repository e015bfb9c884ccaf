"""`python -m platfone_async demo`: a whole activation offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from platfone_async.cli._demo import run_demo
from platfone_async.testing import VirtualClock


@pytest.mark.anyio
async def test_the_demo_waits_for_the_sms_and_finalizes() -> None:
    """The demo orders, polls every 0.5 s while the SMS is due (2.75 s, virtual clock),
    prints the code and finalizes: exit status 0."""
    clock = VirtualClock()
    lines: list[str] = []
    async with clock.autojump():
        status = await run_demo(lines.append, sms_delay=2.75, clock=clock)
    text = "\n".join(lines)
    assert 0 == status
    assert re.search(r"Code: \d{6}", text), text
    waits = [line for line in lines if "waiting for the SMS" in line]
    assert 5 == len(waits)  # polls at 0.5 .. 2.5 s; the one at 3 s has the SMS
    assert "Finalized" in text


@pytest.mark.anyio
async def test_the_demo_shows_money_in_dollars_and_phones_with_a_plus() -> None:
    """The demo prints money as the command does (``$1.73``, never cents) and the number
    with its ``+``."""
    clock = VirtualClock()
    lines: list[str] = []
    async with clock.autojump():
        await run_demo(lines.append, sms_delay=0.5, clock=clock)
    text = "\n".join(lines)
    assert "cents" not in text
    assert re.search(r"Price of telegram in uk: \$\d+\.\d\d suggested \(\$\d+\.\d\d-\$", text)
    assert re.search(r"Ordered \+\d+ for \$\d+\.\d\d \(activation", text), text
    assert re.search(r"Balance: \$\d+\.\d\d total", text)


def test_the_demo_command_runs_offline() -> None:
    """`python -m platfone_async demo` exits 0 and prints the SMS code, with no API key
    in the environment (the SMS at once: the command costs one poll interval)."""
    env = {k: v for k, v in os.environ.items() if k != "PLATFONE_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "platfone_async", "demo", "--sms-delay", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert re.search(r"Code: \d{6}", done.stdout), done.stdout
    assert "Finalized" in done.stdout
