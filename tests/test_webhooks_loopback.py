"""Across threads: the emulator POSTs over a real loopback port to a WebhookHandler served
by uvicorn in another thread, which wakes a watcher on the test's loop; and a sync
Platfone's watcher, on its own loop thread, woken by a handler on yet another."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import anyio
import pytest

from platfone_async import Activation, Platfone
from platfone_async.testing import Offer, PlatfoneEmulator
from platfone_async.webhooks import WebhookHandler

uvicorn = pytest.importorskip("uvicorn")

SECRET = "whsec-loopback-5d1e"


@pytest.fixture
def handler() -> WebhookHandler:
    return WebhookHandler(SECRET)


@pytest.fixture
def receiver(handler: WebhookHandler) -> Iterator[str]:
    """The handler's ASGI app on a free loopback port (uvicorn in a thread): its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(handler.asgi_app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/platfone/webhooks"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.mark.anyio
async def test_sms_over_a_real_port_wakes_a_ten_minute_watcher(
    receiver: str, handler: WebhookHandler
) -> None:
    """SMS 0.2 s after the order; the watcher (interval 10 min) has it within 2 s, 2 polls."""
    emulator = PlatfoneEmulator(rate_limits=None, success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 100)])
    emulator.configure_webhooks(receiver, secret=SECRET)
    states: list[Activation] = []
    async with emulator.client(rate_limits=None, max_retries=0) as client:
        handler.attach(client)
        activation = await client.create_activation("telegram", "uk")

        async def sms_soon() -> None:
            await anyio.sleep(0.2)
            emulator.deliver_sms(activation.activation_id, "31337")

        started = time.monotonic()
        with anyio.fail_after(10):
            async with emulator.webhooks.running(), anyio.create_task_group() as tg:
                tg.start_soon(sms_soon)
                async for state in client.watch_activation(activation, interval=600):
                    states.append(state)
        elapsed = time.monotonic() - started
    assert "31337" == states[-1].sms_code
    assert elapsed < 2
    assert 2 == emulator.request_count("get_activation")


def test_sync_client_watcher_is_woken_from_another_thread() -> None:
    """A sync Platfone's wait_for_sms (interval 10 min) wakes when a handler attached to
    it receives the SMS on another thread's event loop."""
    emulator = PlatfoneEmulator(rate_limits=None, success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 100)])
    handler = WebhookHandler(SECRET)
    emulator.configure_webhooks(app=handler.asgi_app(), secret=SECRET)
    http = emulator.http_client()
    with Platfone(emulator.api_key, base_url=emulator.base_url, http_client=http) as client:
        handler.attach(client)
        activation = client.create_activation("telegram", "uk")

        def sms_soon() -> None:
            time.sleep(0.2)
            emulator.deliver_sms(activation.activation_id, "8080")
            anyio.run(emulator.webhooks.deliver)

        sender = threading.Thread(target=sms_soon)
        started = time.monotonic()
        sender.start()
        got = client.wait_for_sms(activation, timeout=10, interval=600)
        elapsed = time.monotonic() - started
        sender.join(10)
    assert "8080" == got.sms_code
    assert elapsed < 2
    assert 2 == emulator.request_count("get_activation")
