"""Conventions of the best API SDKs: with_options(), proxy=, PLATFONE_LOG."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import anyio
import httpx
import pytest

import platfone_async as pf
from platfone_async.testing import Fault, PlatfoneEmulator, VirtualClock

pytestmark = pytest.mark.anyio


async def test_with_options_is_a_light_copy_sharing_pool_limits_and_wiring() -> None:
    """The copy has its own timeout and policy; the pool, the key's limits and the
    emulator wiring are the original's, and the original is unchanged."""
    emulator = PlatfoneEmulator()
    async with emulator.client(timeout=30.0) as client:
        quick = client.with_options(timeout=2.5, max_retries=0)
        assert (2.5, 0) == (quick._http.timeout.read, quick.retry_policy.max_retries)
        assert (30.0, 2) == (client._http.timeout.read, client.retry_policy.max_retries)
        assert quick._http.client is client._http.client
        assert quick._http.limits is client._http.limits
        assert quick._orders.book is client._orders.book
        assert isinstance(await quick.get_balance(), pf.Balance)
        await quick.aclose()  # closes nothing: the pool is the original's
        assert isinstance(await client.get_balance(), pf.Balance)
        assert 2 == emulator.request_count("get_balance")


async def test_with_options_changes_what_is_retried_for_the_copy_only() -> None:
    """max_retries=0 on the copy: a 503 is raised at once; the original retries it."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock)
    async with clock.autojump(), emulator.client(clock=clock) as client:
        emulator.inject_fault("get_balance", Fault(status=503))
        with pytest.raises(pf.ServerError):
            await client.with_options(max_retries=0).get_balance()
        emulator.inject_fault("get_balance", Fault(status=503))
        assert isinstance(await client.get_balance(), pf.Balance)
    assert [503, 503, 200] == [r.status for r in emulator.requests]


async def test_with_options_keeps_what_is_not_given_and_checks_what_is() -> None:
    """Left out, the timeout stays the client's (None means no timeout); a policy and
    max_retries together, or a negative timeout, fail before anything is sent."""
    emulator = PlatfoneEmulator()
    policy = pf.RetryPolicy(max_retries=5)
    async with emulator.client(timeout=7.0) as client:
        assert 7.0 == client.with_options(retry_policy=policy)._http.timeout.read
        assert 5 == client.with_options(retry_policy=policy).retry_policy.max_retries
        assert None is client.with_options(timeout=None)._http.timeout.read
        with pytest.raises(pf.InvalidParameterError, match="max_retries"):
            client.with_options(max_retries=1, retry_policy=policy)
        with pytest.raises(pf.InvalidParameterError, match="timeout"):
            client.with_options(timeout=-1)
        with pytest.raises(pf.InvalidParameterError, match="retry_policy"):
            client.with_options(retry_policy=3)  # type: ignore[arg-type]
    assert [] == emulator.requests


def test_the_sync_twin_of_with_options_shares_the_clients_loop() -> None:
    """Platfone.with_options() is a Platfone on the same loop thread and async client
    pool; closing the copy leaves the original working."""
    emulator = PlatfoneEmulator()
    with _served(emulator) as base_url, pf.Platfone(emulator.api_key, base_url=base_url) as client:
        quick = client.with_options(timeout=3.0)
        assert isinstance(quick, pf.Platfone)
        assert isinstance(quick.get_balance(), pf.Balance)
        assert client._runtime is quick._runtime
        quick.close()
        assert isinstance(client.get_balance(), pf.Balance)
    assert 2 == emulator.request_count("get_balance")


async def test_proxy_sends_every_request_through_the_proxy() -> None:
    """proxy= routes the SDK's own client through it (absolute-form request lines); with
    an injected http_client it is refused before anything is sent."""
    seen: list[bytes] = []
    body = b'{"total": 500, "reserved": 100}'

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            seen.append(data.split(b"\r\n", 1)[0])
            await stream.send(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        async with pf.AsyncPlatfone(
            "k", base_url="http://platfone.invalid/api/v1", proxy=f"http://127.0.0.1:{port}"
        ) as client:
            balance = await client.get_balance()
        tg.cancel_scope.cancel()
    assert pf.Balance(500, 100) == balance
    assert [b"GET http://platfone.invalid/api/v1/user/balance HTTP/1.1"] == seen
    with pytest.raises(pf.InvalidParameterError, match="proxy"):
        pf.AsyncPlatfone("k", proxy="http://127.0.0.1:1", http_client=httpx.AsyncClient())


@pytest.mark.parametrize("level", ["debug", "info", ""])
def test_platfone_log_turns_on_the_sdks_own_logging(level: str) -> None:
    """PLATFONE_LOG=debug logs each request to stderr (never the key); info what the SDK
    did about a failure; unset, only Python's default (warnings)."""
    script = (
        "import anyio\n"
        "from platfone_async.testing import Fault, PlatfoneEmulator\n"
        "async def main():\n"
        "    emulator = PlatfoneEmulator(api_key='secret-key-123')\n"
        "    emulator.inject_fault('create_activation', Fault(status=502, after_processing=True))\n"
        "    async with emulator.client(success_rate_guard='off') as client:\n"
        "        await client.get_balance()\n"
        "        await client.create_activation('telegram', 'uk')\n"
        "anyio.run(main)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PLATFONE_LOG"}
    if level:
        env["PLATFONE_LOG"] = level
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert 0 == done.returncode, done.stderr
    err = done.stderr
    assert "secret-key-123" not in err
    assert ("GET /user/balance -> 200" in err) == (level == "debug")
    assert ("in the history" in err and "INFO" in err) == (level in ("debug", "info"))


def _served(emulator: PlatfoneEmulator) -> _Served:
    return _Served(emulator)


class _Served:
    """The emulator on a loopback port (uvicorn in a thread), for a sync client."""

    def __init__(self, emulator: PlatfoneEmulator) -> None:
        self.emulator = emulator

    def __enter__(self) -> str:
        import socket

        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.emulator.base_url = f"http://127.0.0.1:{port}/api/v1"
        config = uvicorn.Config(
            self.emulator.app, interface="asgi3", log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        while not self.server.started:
            threading.Event().wait(0.01)
        return self.emulator.base_url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
