"""Starting a benchmark's server in a child process (a helper, not a benchmark)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(script: str, *, wait: float = 20.0) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``script --serve PORT`` and wait until it accepts; return it and its API root."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, script, "--serve", str(port)])
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/api/v1"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("benchmark server did not start")
