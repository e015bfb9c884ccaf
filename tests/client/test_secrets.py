"""The API key never appears in a repr, an exception message or a log line."""

from __future__ import annotations

import logging

import httpx
import pytest

import platfone_async as pf
from platfone_async.testing import VirtualClock
from tests._support import API_KEY, Server, json_response

pytestmark = pytest.mark.anyio


async def test_key_absent_from_repr_errors_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    """A run with successes, errors and retries never prints the key anywhere."""
    clock = VirtualClock()
    server = Server(
        json_response(200, {"total": 1, "reserved": 0}),
        json_response(401, {"errorName": "UnauthorizedException", "errorMessage": "bad key"}),
        httpx.Response(503),
        httpx.Response(503),
        httpx.Response(503),
    )
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="platfone_async"):
        async with clock.autojump(), server.client(clock) as client:
            seen += [repr(client), str(client)]
            await client.get_balance()
            for _ in range(2):
                try:
                    await client.get_balance()
                except pf.PlatfoneError as exc:
                    seen += [str(exc), repr(exc), repr(exc.__dict__)]
            try:
                pf.AsyncPlatfone(API_KEY + "\n")
            except pf.InvalidParameterError as exc:
                seen.append(str(exc))
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) >= 5  # one DEBUG line per request and attempt
    assert any("GET /user/balance -> 200" in line for line in lines)
    for text in seen + lines:
        assert API_KEY not in text
