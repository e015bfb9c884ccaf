"""Helpers for tests that talk to a scripted ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from platfone_async import AsyncPlatfone
from platfone_async.testing import VirtualClock

API_KEY = "sk-live-SECRET-0123456789abcdef"
BASE_URL = "https://api.example.test/api/v1"

AID = "64a1c0e8d2a1f9b7e45d3b8e"

ACTIVATION: dict[str, object] = {
    "activation_id": AID,
    "price": 20,
    "phone": "14155552671",
    "country_id": "us",
    "service_id": "netflix",
    "sms_status": "smsRequested",
    "activation_status": "active",
    "billing_status": "reserved",
    "report_status": None,
    "sms_code": None,
    "sms_text": None,
    "expire_at": 1729088539,
    "updated_at": 1729087939,
    "created_at": 1729087339,
    "is_retriable": False,
    "cancelable_after": None,
}

HISTORY_ACTIVATION = {
    "activation_id": "63f4d0dab040a865d80da08a",
    "phone": "447975777666",
    "country_id": "uk",
    "service_id": "7eleven",
    "sms_status": "smsRequested",
    "activation_status": "expired",
    "billing_status": "billed",
    "report_status": None,
    "sms_code": "6363",
    "sms_text": "Your code is 6363",
    "price": 90,
    "expire_at": 1679061628,
    "updated_at": 1679061629,
    "created_at": 1679061001,
    "is_retriable": True,
    "cancelable_after": None,
}

PRICE = {"price": {"min": 210, "max": 510, "suggested": 310}, "quality": {"avg": 0.3}, "count": 143}

REPORT = {
    "reason_id": 1,
    "reason_name": "SMS is not coming",
    "message": "Test message",
    "activation_state_snapshot": '{"activation_status":"active"}',
    "updated_at": 1679061001,
    "created_at": 1679061001,
    "activation": HISTORY_ACTIVATION,
}

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """A response with a JSON body."""
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


class Server:
    """A scripted server: answers requests from a queue (or one default), records them."""

    def __init__(self, *replies: Reply, default: Reply | None = None) -> None:
        self.replies = list(replies)
        self.default = default
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else self.default
        if reply is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        return reply(request) if callable(reply) else reply

    def client(self, clock: VirtualClock | None = None, **kwargs: Any) -> AsyncPlatfone:
        """An ``AsyncPlatfone`` that sends to this server; its ``aclose()`` also closes the
        httpx client made for it (an injected client is the caller's to close)."""
        return _ServerClient(
            API_KEY,
            base_url=BASE_URL,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler)),
            clock=clock if clock is not None else VirtualClock(),
            **kwargs,
        )


class _ServerClient(AsyncPlatfone):
    """An AsyncPlatfone on a :class:`Server`, closing its injected httpx client too."""

    def __init__(self, *args: Any, http_client: httpx.AsyncClient, **kwargs: Any) -> None:
        super().__init__(*args, http_client=http_client, **kwargs)
        self._made_for_it = http_client

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await self._made_for_it.aclose()


class AheadClock:
    """A client's clock ``ahead`` seconds ahead of ``clock`` (a server's; sleeps shared)."""

    def __init__(self, clock: VirtualClock, ahead: float) -> None:
        self.clock = clock
        self.ahead = ahead

    def time(self) -> float:
        return self.clock.time() + self.ahead

    def monotonic(self) -> float:
        return self.clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
