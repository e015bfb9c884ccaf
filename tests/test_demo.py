"""`python -m platfone_async demo`: a whole activation offline, in a few seconds."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_runs_a_whole_activation_offline() -> None:
    """The demo exits 0 and prints the SMS code, with no API key in the environment."""
    env = {k: v for k, v in os.environ.items() if k != "PLATFONE_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "platfone_async", "demo", "--sms-delay", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert re.search(r"Code: \d{6}", done.stdout), done.stdout
    assert "waiting for the SMS" in done.stdout
    assert "Finalized" in done.stdout
