"""Across threads: the emulator POSTs over a real loopback port to a WebhookHandler served
by uvicorn in another thread, which wakes a watcher on the test's loop; and a sync
Platfone's watcher, on its own loop thread, woken by a handler on yet another."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import anyio
import pytest
import uvicorn

from platfone_async import Activation, Platfone
from platfone_async.testing import Offer, PlatfoneEmulator
from platfone_async.webhooks import WebhookHandler

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
    """The SMS arrives once the watcher (interval 10 min) has polled; the webhook over a
    real port wakes it: it has the code after 2 polls, not 10 minutes later."""
    emulator = PlatfoneEmulator(rate_limits=None, success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 100)])
    emulator.configure_webhooks(receiver, secret=SECRET)
    states: list[Activation] = []
    async with emulator.client(rate_limits=None, max_retries=0) as client:
        handler.attach(client)
        activation = await client.create_activation("telegram", "uk")
        # (a guard against a hang only: without the push the watcher sleeps 10 minutes)
        with anyio.fail_after(60):
            async with emulator.webhooks.running():
                async for state in client.watch_activation(activation, interval=600):
                    states.append(state)
                    if 1 == len(states):
                        emulator.deliver_sms(activation.activation_id, "31337")
    assert "31337" == states[-1].sms_code
    assert 2 == emulator.request_count("get_activation")


def _after_the_first_poll(emulator: PlatfoneEmulator, then: Callable[[], None]) -> None:
    """Wait (briefly, never a fixed time) until the watcher's first poll reached the
    emulator, then call ``then``."""
    deadline = time.monotonic() + 60
    while 0 == emulator.request_count("get_activation"):
        assert time.monotonic() < deadline, "the watcher never polled"
        time.sleep(0.001)
    then()


def test_sync_client_watcher_is_woken_from_another_thread() -> None:
    """A sync Platfone's wait_for_sms (interval 10 min) wakes when a handler attached to
    it receives the SMS on another thread's event loop: 2 polls, not 10 minutes."""
    emulator = PlatfoneEmulator(rate_limits=None, success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 100)])
    handler = WebhookHandler(SECRET)
    emulator.configure_webhooks(app=handler.asgi_app(), secret=SECRET)
    http = emulator.http_client()
    with Platfone(emulator.api_key, base_url=emulator.base_url, http_client=http) as client:
        handler.attach(client)
        activation = client.create_activation("telegram", "uk")

        def sms() -> None:
            emulator.deliver_sms(activation.activation_id, "8080")
            anyio.run(emulator.webhooks.deliver)

        sender = threading.Thread(target=_after_the_first_poll, args=(emulator, sms))
        sender.start()
        got = client.wait_for_sms(activation, timeout=60, interval=600)
        sender.join(60)
    assert "8080" == got.sms_code
    assert 2 == emulator.request_count("get_activation")
