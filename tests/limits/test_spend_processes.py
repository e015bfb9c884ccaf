"""Two real processes on one SQLite file share one spend limit.

The emulator is served on a loopback port in this process; each order comes from a
fresh Python process whose client has the same ``SpendLimit`` and ``SQLiteBackend``
file. Three short processes in a row, a second or so in all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from platfone_async import Platfone
from platfone_async.testing import Offer, PlatfoneEmulator

from ..fleet._servers import serve

ROOT = Path(__file__).resolve().parents[2]

#: One process: optionally cancel an activation first, then order at 60 under 100/1h.
WORKER = """
import json, sys
from platfone_async import Platfone, SpendLimit, SpendLimitError, SQLiteBackend
base_url, api_key, path, cancel = sys.argv[1:5]
with Platfone(api_key, base_url=base_url, limits_backend=SQLiteBackend(path),
              spend_limit=SpendLimit(100, 3600), success_rate_guard="off") as client:
    if cancel:
        client.cancel_activation(cancel)
    try:
        got = {"ordered": client.create_activation("telegram", "uk", max_price=60).activation_id}
    except SpendLimitError as error:
        got = {"refused": error.counted}
print(json.dumps(got))
"""


def _run(base_url: str, api_key: str, path: Path, cancel: str = "") -> Any:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, base_url, api_key, str(path), cancel],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == done.returncode, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_processes_on_one_sqlite_file_share_one_budget(tmp_path: Path) -> None:
    """The second process is refused for the first one's money (nothing sent); once a
    process cancels that number, its money is released for every process."""
    emulator = PlatfoneEmulator(success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(50, 0.8, 100, cancel_after=0)])
    state = tmp_path / "state.db"
    with serve(emulator) as base_url:
        first = _run(base_url, emulator.api_key, state)
        second = _run(base_url, emulator.api_key, state)
        third = _run(base_url, emulator.api_key, state, cancel=first["ordered"])
        with Platfone(emulator.api_key, base_url=base_url, rate_limits=None) as client:
            cancelled = client.get_activation(first["ordered"])
    assert {"refused": 50} == second
    assert "ordered" in third
    assert 2 == emulator.orders_placed()
    assert 2 == emulator.request_count("create_activation")
    assert "released" == cancelled.billing_status
