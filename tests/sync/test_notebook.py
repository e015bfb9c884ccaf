"""The notebook proof: ``tests/notebooks/quickstart.ipynb`` runs headless in a real kernel.

Jupyter runs an asyncio loop in the kernel's main thread, which is exactly where a sync
client built on ``asyncio.run`` breaks. The notebook is executed by nbclient in an
ipykernel against the emulator served on a loopback port (real HTTP), and fails the test
if any cell raises.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent / "notebooks" / "quickstart.ipynb"


@pytest.fixture
def served_emulator() -> Iterator[tuple[str, str]]:
    """``python -m platfone_async.testing serve`` on a free loopback port: (base URL, key).

    SMS arrive at once (``--sms-delay 0``), so waiting for one takes a single poll.
    """
    command = [sys.executable, "-m", "platfone_async.testing", "serve", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--sms-delay", "0"], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert server.stdout is not None
    try:
        base_url = server.stdout.readline().rsplit(" ", 1)[-1].strip()
        api_key = server.stdout.readline().rsplit(" ", 1)[-1].strip()
        yield base_url, api_key
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def _text_outputs(nb: Any) -> str:
    lines = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            lines.append(output.get("text", ""))
            lines.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(lines)


def test_quickstart_notebook_runs_in_a_real_kernel(
    served_emulator: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every cell of the quickstart runs without error inside an ipykernel, whose running
    event loop is real."""
    base_url, api_key = served_emulator
    monkeypatch.setenv("PLATFONE_BASE_URL", base_url)
    monkeypatch.setenv("PLATFONE_API_KEY", api_key)
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=60,
        startup_timeout=60,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError if any cell fails
    text = _text_outputs(nb)
    assert "running=True" in text  # a loop really was running in the kernel's thread
    assert "outcome: finalized" in text
    assert re.search(r"\r\+\d+  telegram/uk  smsReceived  code \d{6}", text)  # progress=True
    assert 2 == text.count(" finalized ")  # both activations show up in the history
