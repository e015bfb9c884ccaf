"""`python -m platfone_async.testing serve`: a real port, a real request, a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from platfone_async import AsyncPlatfone


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """The emulator in a subprocess on a free port: (base URL, API key)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "platfone_async.testing", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url_line = process.stdout.readline()
        key_line = process.stdout.readline()
        assert url_line.startswith("Platfone emulator at http://127.0.0.1:"), url_line
        assert key_line.startswith("API key: "), key_line
        yield url_line.split()[-1], key_line.split()[-1]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert 0 == process.returncode, stderr


@pytest.mark.anyio
async def test_serve_answers_a_real_request(served: tuple[str, str]) -> None:
    """AsyncPlatfone over real HTTP reads the ready account's balance and orders."""
    base_url, api_key = served
    assert not base_url.endswith(":0/api/v1")
    async with AsyncPlatfone(api_key, base_url=base_url, max_retries=0) as client:
        balance = await client.get_balance()
        activation = await client.create_activation("telegram", "uk")
    assert 10_000 == balance.total
    assert "active" == activation.activation_status


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_printed_address_accepts_connections_at_once() -> None:
    """Once the address is printed the port is listening: a connection made while the
    server process is frozen right after printing is accepted (it waits in the
    backlog), not refused - so a reader never needs to wait a fixed time."""
    process = subprocess.Popen(
        [sys.executable, "-m", "platfone_async.testing", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        os.kill(process.pid, signal.SIGSTOP)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.communicate(timeout=10)
