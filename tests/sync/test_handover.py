"""Ctrl-C that lands while a blocking call is being handed to the loop (not yet waiting).

The signal can interrupt the main thread anywhere, including inside the hand-over itself:
the call must still be cancelled on the loop before ``KeyboardInterrupt`` reaches the
caller, and a call that was never handed over must not be waited for.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from platfone_async import Platfone


class Hanging(httpx.AsyncBaseTransport):
    """Answers a balance - or (``hang``) waits for ever, noting its cancellation - and
    the countries (``[]``) at once."""

    def __init__(self) -> None:
        self.hang = False
        self.started = 0
        self.cancelled = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/countries"):
            return httpx.Response(200, json=[])
        if not self.hang:
            return httpx.Response(200, json={"total": 5, "reserved": 1})
        self.started += 1
        try:
            await anyio.sleep_forever()
        finally:
            self.cancelled += 1
        raise AssertionError("unreachable")  # pragma: no cover


def _client(transport: Hanging) -> Platfone:
    return Platfone(
        "key",
        base_url="http://platfone.test/api/v1",
        http_client=httpx.AsyncClient(transport=transport),
        rate_limits=None,
    )


def _interrupt_the_hand_over(
    client: Platfone, monkeypatch: pytest.MonkeyPatch, *, after_queueing: bool
) -> None:
    """The next hand-over of a call raises KeyboardInterrupt, before or after queueing it."""
    runtime: Any = client._runtime
    submit = runtime.submit
    armed = [True]

    def interrupted_submit(callback: Any, step: Any) -> None:
        if armed and getattr(callback, "__name__", "") == "_resume":
            armed.clear()
            if after_queueing:
                submit(callback, step)
            raise KeyboardInterrupt
        submit(callback, step)

    monkeypatch.setattr(runtime, "submit", interrupted_submit)


def test_ctrl_c_after_the_call_was_queued_cancels_it_before_raising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The call reached the loop: it is cancelled there before the caller sees Ctrl-C."""
    transport = Hanging()
    with _client(transport) as client:
        assert 4 == client.get_balance().available  # the loop is running
        transport.hang = True
        _interrupt_the_hand_over(client, monkeypatch, after_queueing=True)
        with pytest.raises(KeyboardInterrupt):
            client.get_balance()
        assert [] == client.get_countries()  # a round trip: the loop has run what it had
        assert transport.started == transport.cancelled  # nothing left hanging there
        transport.hang = False
        assert 4 == client.get_balance().available


def test_ctrl_c_before_the_call_was_queued_returns_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The call never reached the loop: Ctrl-C is raised at once, nothing ran, the client
    still works."""
    transport = Hanging()
    with _client(transport) as client:
        assert 4 == client.get_balance().available
        transport.hang = True
        _interrupt_the_hand_over(client, monkeypatch, after_queueing=False)
        with pytest.raises(KeyboardInterrupt):
            client.get_balance()
        assert [] == client.get_countries()
        assert 0 == transport.started
        transport.hang = False
        assert 4 == client.get_balance().available
