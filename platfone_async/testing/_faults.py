"""Faults to inject on a route for its next N requests."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from ._asgi import Response, Send

__all__ = ["MALFORMED_BODY", "DroppedConnection", "Fault", "FaultPlan", "answer_instead", "spoil"]

# What a "malformed body" is: JSON cut off mid-object, as a broken proxy would send.
MALFORMED_BODY = b'{"activation_id": "64a1c0e8d2a1f9b7e45d3b8e", "price": '


@attrs.frozen
class Fault:
    """What goes wrong with one request.

    - ``delay``: seconds to wait (on the emulator's clock) before anything else.
    - ``status`` (with ``body`` and ``headers``): answer that instead - a ``body`` that
      is a dict or list is sent as JSON, a str or bytes as is; by default a JSON error.
    - ``drop``: the connection drops without an answer (``httpx.ReadError`` in-process;
      an incomplete response through ``serve``).
    - ``malformed``: answer the real status with a body that is not valid JSON.
    - ``truncated``: answer the real status and headers with the real body cut in half
      (a connection that closed early behind a proxy that still said 200).
    - ``reset_in``: with ``status=429``, the ``x-ratelimit-reset`` header says the limit
      resets this many seconds after the answer (a ``TooManyRequestsException`` body).
    - ``after_processing``: the emulator handles the request first (an order is
      placed, a cancel happens) and only its answer is lost to ``status`` or ``drop``.
      ``malformed`` always is after processing.

    - ``answer_delay``: seconds between handling the request and sending its answer
      (on the emulator's clock): an order is placed at once, its answer arrives late -
      the client still waiting when the activation is already in the history.

    ``Fault(delay=2.0)`` alone is plain latency; the request then goes on normally.
    """

    delay: float = 0.0
    status: int | None = None
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    drop: bool = False
    malformed: bool = False
    truncated: bool = False
    after_processing: bool = False
    reset_in: float | None = None
    answer_delay: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        if self.answer_delay < 0:
            raise ValueError("answer_delay must be >= 0")
        if self.drop and self.status is not None:
            raise ValueError("a fault either drops the connection or answers a status")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"not an HTTP status: {self.status!r}")
        if self.malformed and self.truncated:
            raise ValueError("a fault spoils the body one way: malformed or truncated")
        if self.reset_in is not None and (self.status != 429 or self.reset_in < 0):
            raise ValueError("reset_in (>= 0 seconds) goes with status=429")

    @property
    def acts_before(self) -> bool:
        """Whether it replaces the answer before the emulator touches any state."""
        return (self.drop or self.status is not None) and not self.after_processing

    def encoded_body(self) -> tuple[bytes, str]:
        """The injected answer's body and content type."""
        if self.body is None and self.status == 429:
            error = {"errorName": "TooManyRequestsException", "errorMessage": "injected 429"}
            return json.dumps(error).encode(), "application/json"
        if self.body is None:
            error = {"errorName": "InjectedFault", "errorMessage": "fault injected by a test"}
            return json.dumps(error).encode(), "application/json"
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class FaultPlan:
    """Faults waiting for their route; ``"*"`` matches any route."""

    def __init__(self) -> None:
        self._pending: dict[str, list[list[Any]]] = {}

    def add(self, route: str, fault: Fault, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        self._pending.setdefault(route, []).append([fault, times])

    def take(self, route: str) -> Fault | None:
        """The fault for this request, if any, using up one of its times."""
        for key in (route, "*"):
            queue = self._pending.get(key)
            if queue:
                entry = queue[0]
                entry[1] -= 1
                if entry[1] == 0:
                    queue.pop(0)
                fault: Fault = entry[0]
                return fault
        return None

    def clear(self) -> None:
        self._pending.clear()

    def pending(self) -> int:
        return sum(times for queue in self._pending.values() for _, times in queue)


async def answer_instead(send: Send, fault: Fault, now: float) -> Response:
    """The answer a fault puts in place of the emulator's (or it drops the connection)."""
    if fault.drop:
        await _drop_connection(send)
    body, content_type = fault.encoded_body()
    headers = {"content-type": content_type}
    if fault.reset_in is not None:
        headers["x-ratelimit-reset"] = str(math.ceil(now + fault.reset_in))
    return Response(fault.status or 500, body, {**headers, **fault.headers})


async def spoil(send: Send, response: Response, fault: Fault, now: float) -> Response:
    """What a fault does to the emulator's own answer, once it has acted."""
    if fault.after_processing and (fault.drop or fault.status is not None):
        return await answer_instead(send, fault, now)
    if fault.malformed:
        return Response(response.status, MALFORMED_BODY, dict(response.headers))
    if fault.truncated:
        return Response(response.status, response.body[: len(response.body) // 2], response.headers)
    return response


class DroppedConnection(httpx.ReadError):
    """An injected drop: in-process, the client's ``httpx.ReadError``; served, the app
    ends without finishing its answer and uvicorn closes the socket."""


async def _drop_connection(send: Send) -> None:
    # Start an answer, then fail: ASGITransport re-raises the error to the client and
    # a real server (uvicorn) closes the socket mid-response.
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
    await send(start)
    raise DroppedConnection("the emulator dropped the connection (injected fault)")
