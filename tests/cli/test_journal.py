"""The command journals what it opens: by default in a SQLite file per key in the user's
state directory; ``platfone open`` lists it, and every command says in one line when a
run that ended left numbers open. Real processes against the emulator served on
loopback (real time: a lease of 0.3 s stands for the 30 s one)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from platfone_async.cli._state import default_state_file
from platfone_async.testing import Offer, PlatfoneEmulator

from ..fleet._servers import serve

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")

LEASE = 0.3


@pytest.fixture
def emulator() -> Iterator[PlatfoneEmulator]:
    """The emulator on real time, served on a loopback port; no SMS unless delivered."""
    emulator = PlatfoneEmulator(sms_policy=None, rate_limits=None)
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=120)])
    with serve(emulator):
        yield emulator


def platfone(emulator: PlatfoneEmulator, *argv: str) -> subprocess.CompletedProcess[str]:
    """``platfone`` as a process of its own on the served emulator."""
    command = [sys.executable, "-m", "platfone_async", "--base-url", emulator.base_url]
    command += ["--api-key", emulator.api_key, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_run_journals_in_the_default_file_and_the_next_says_what_it_left(
    emulator: PlatfoneEmulator, state_home: Path
) -> None:
    """With no --state, an order is journaled in the key's file under $XDG_STATE_HOME
    (named by a digest, never the key); once that run's lease lapsed, ``open`` lists the
    number as left by a run that ended and another command says so in one line."""
    ordered = platfone(emulator, "order", "telegram", "uk", "--json")
    listed = platfone(emulator, "open", "--json")  # within the 30 s lease: a live run's
    state_file = default_state_file(emulator.api_key)
    assert 0 == ordered.returncode, ordered.stderr
    activation_id = json.loads(ordered.stdout)["activation_id"]
    assert state_home / "platfone-async" == state_file.parent
    assert state_file.is_file()
    assert emulator.api_key not in str(state_file)
    ((entry),) = json.loads(listed.stdout)
    assert (activation_id, True, False) == (
        entry["activation"]["activation_id"],
        entry["alive"],
        entry["mine"],
    )
    assert "left open" not in ordered.stderr + listed.stderr


def test_lapsed_numbers_are_listed_and_noticed_once(
    emulator: PlatfoneEmulator, tmp_path: Path
) -> None:
    """A number left by a run whose lease lapsed: ``open`` shows it as left, and any
    other command names it in one line on stderr (its output unchanged)."""
    state = f"sqlite:///{tmp_path / 'state.db'}?lease={LEASE}"
    ordered = platfone(emulator, "--state", state, "order", "telegram", "uk", "--json")
    time.sleep(2 * LEASE)
    with ThreadPoolExecutor(2) as pool:  # two runs at once: the test takes one's time
        listing = pool.submit(platfone, emulator, "--state", state, "open")
        balance = pool.submit(platfone, emulator, "--state", state, "balance", "--json").result()
        listed = listing.result()
    activation_id = json.loads(ordered.stdout)["activation_id"]
    assert activation_id in listed.stdout
    assert "left (its run ended)" in listed.stdout
    assert "platfone recover" in listed.stderr
    assert 0 == balance.returncode
    assert 120 == json.loads(balance.stdout)["reserved"]
    notice = [line for line in balance.stderr.splitlines() if "left open" in line]
    expected = (
        "platfone: 1 number left open by a run that ended "
        "(platfone open lists them; platfone recover settles them)"
    )
    assert [expected] == notice


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "says"),
    [("ftp://host/x", "give sqlite:///path or redis://"), ("sqlite:///x?lease=soon", "lease")],
)
async def test_a_state_url_it_cannot_use_is_a_usage_error(url: str, says: str) -> None:
    """--state naming no store it knows (or a lease that is no number): exit 2, saying
    why, before anything is sent."""
    from platfone_async.cli import amain

    err = io.StringIO()
    code = await amain(["--api-key", "k", "--state", url, "balance"], stderr=err)
    assert 2 == code
    assert says in err.getvalue()


def test_recover_prints_the_code_that_came_after_order_wait_was_killed(
    emulator: PlatfoneEmulator, tmp_path: Path
) -> None:
    """``order --wait`` killed with SIGKILL, the SMS arriving afterwards: ``platfone
    recover`` finalizes the number and prints its code."""
    state = f"sqlite:///{tmp_path / 'state.db'}?lease={LEASE}"
    command = [sys.executable, "-m", "platfone_async", "--base-url", emulator.base_url]
    command += ["--api-key", emulator.api_key, "--state", state]
    waiting = subprocess.Popen(
        [*command, "order", "telegram", "uk", "--wait", "--json", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert waiting.stdout is not None
    first = json.loads(waiting.stdout.readline())
    os.kill(waiting.pid, signal.SIGKILL)
    waiting.communicate(timeout=10)
    emulator.deliver_sms(first["activation_id"], "271828")
    time.sleep(2 * LEASE)
    recovered = platfone(emulator, "--state", state, "recover", "--interval", "0.2")
    assert 0 == recovered.returncode, recovered.stderr
    assert "Code: 271828" in recovered.stdout
    assert f"finalized +{first['phone']}" in recovered.stdout
    assert "finalized" == emulator.activation(first["activation_id"])["activation_status"]
