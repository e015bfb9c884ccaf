"""Every script in ``examples/`` runs offline, as a user runs it, and does what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
OFFLINE = "PLATFONE_API_KEY is not set: running against the embedded emulator"


def run(*args: str) -> str:
    """``python *args`` in ``examples/`` without an API key (warnings are errors): stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFONE_")}
    done = subprocess.run(
        [sys.executable, "-W", "error", *args],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    return done.stdout


def test_there_are_the_promised_examples() -> None:
    """The examples the docs link to exist (and no script is left untested below)."""
    scripts = {p.name for p in EXAMPLES.glob("[!_]*.py")}
    assert {
        "concurrent_sessions.py",
        "quickstart_async.py",
        "quickstart_sync.py",
        "signup_flow.py",
        "test_signup_flow.py",
        "webhook_receiver.py",
    } == scripts


@pytest.mark.parametrize("script", ["quickstart_async.py", "quickstart_sync.py", "signup_flow.py"])
def test_a_quickstart_reads_a_code_and_settles_the_number(script: str) -> None:
    """Each quickstart says it is offline, prints the code it read, and ends finalized."""
    out = run(script)
    assert out.startswith(OFFLINE)
    [code_line] = [line for line in out.splitlines() if line.startswith("code: ")]
    assert code_line.removeprefix("code: ").isdigit()
    if script != "signup_flow.py":
        assert "outcome: finalized" in out


def test_twenty_concurrent_sessions_all_settle() -> None:
    """20 sessions at once: every one ends finalized (SMS) or cancelled (none came)."""
    out = run("concurrent_sessions.py")
    assert out.startswith(OFFLINE)
    finalized = sum("got" in line for line in out.splitlines())
    cancelled = sum("no SMS" in line for line in out.splitlines())
    assert 20 == finalized + cancelled
    assert f"{cancelled} canceled, {finalized} finalized" == out.splitlines()[-1]


def test_the_webhook_receiver_wakes_the_wait_when_the_sms_arrives() -> None:
    """The SMS at 90 s reaches the app as a webhook and the wait (polling every 600 s)
    answers at once, not at its next poll."""
    out = run("webhook_receiver.py")
    assert out.startswith(OFFLINE)
    assert "webhook: " in out
    [answer] = [line for line in out.splitlines() if line.startswith("answer after ")]
    assert 90 <= int(answer.split()[2]) < 100, answer


def test_the_example_test_file_passes_on_the_pytest_plugin() -> None:
    """``pytest examples/test_signup_flow.py`` passes: its two tests, on asyncio and trio."""
    out = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_signup_flow.py")
    assert "4 passed" in out, out
