"""Serving the emulator in a child process for a test: start it, read its banner, stop it."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import attrs


@attrs.frozen
class Served:
    """A running ``python -m platfone_async.testing serve``: what it printed."""

    process: subprocess.Popen[str]
    base_url: str
    control_url: str
    api_keys: tuple[str, ...]
    banner: tuple[str, ...]

    @property
    def api_key(self) -> str:
        return self.api_keys[0]


@contextlib.contextmanager
def serve(*options: str, stop: signal.Signals = signal.SIGTERM) -> Iterator[Served]:
    """Serve on a free loopback port with ``options``; on leaving, stop it with ``stop``
    and check that it exited cleanly (status 0, "stopped" printed)."""
    command_line = [
        sys.executable,
        "-m",
        "platfone_async.testing",
        "serve",
        "--port",
        "0",
        *options,
    ]
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command_line, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert process.stdout is not None
        try:
            banner = _banner(process)
            yield Served(
                process,
                base_url=banner[0].split()[-1],
                control_url=banner[-1].split()[-1],
                api_keys=tuple(line.split()[-1] for line in banner[1:-1]),
                banner=tuple(banner),
            )
        finally:
            process.send_signal(stop)
            try:
                rest, _ = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
                process.kill()
                process.communicate()
                raise
        stderr.seek(0)
        errors = stderr.read()
        assert 0 == process.returncode, errors
        assert "Platfone emulator stopped\n" == rest
        assert "Traceback" not in errors


def _banner(process: subprocess.Popen[str]) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Control API at "):
        line = process.stdout.readline()
        if not line:
            process.wait(10)
            raise AssertionError(f"the emulator exited ({process.returncode}): {lines}")
        lines.append(line.rstrip("\n"))
    return lines
