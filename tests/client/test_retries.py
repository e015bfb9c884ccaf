"""Idempotent calls survive transient failures; an order is never resent blindly."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import httpx
import pytest

import platfone_async as pf
from platfone_async.testing import VirtualClock
from tests._support import ACTIVATION, Server, json_response

pytestmark = pytest.mark.anyio

BALANCE = {"total": 100, "reserved": 0}


def _raise(exc: Exception) -> httpx.Response:
    raise exc


async def test_idempotent_call_survives_two_503s() -> None:
    """A GET answered 503, 503, 200 returns the 200 after two backoff sleeps."""
    clock = VirtualClock()
    server = Server(httpx.Response(503), httpx.Response(503), json_response(200, BALANCE))
    policy = pf.RetryPolicy(max_retries=2, backoff_base=0.5, jitter=0.5)
    async with clock.autojump(), server.client(clock, retry_policy=policy) as client:
        start = clock.monotonic()
        balance = await client.get_balance()
        waited = clock.monotonic() - start
    assert pf.Balance(100, 0) == balance
    assert 3 == len(server.requests)
    # two exponential backoffs, 0.5 and 1.0 s, each cut by up to half its length (jitter)
    assert 0.25 + 0.5 <= waited <= 0.5 + 1.0


async def test_retries_give_up_after_max_retries() -> None:
    """After max_retries retries the last error is raised."""
    clock = VirtualClock()
    server = Server(default=httpx.Response(502))
    async with clock.autojump(), server.client(clock, max_retries=3) as client:
        with pytest.raises(pf.ServerError):
            await client.get_balance()
    assert 4 == len(server.requests)


async def test_put_retried_after_connection_error() -> None:
    """A PUT is idempotent: a dropped connection is retried."""
    clock = VirtualClock()
    server = Server(
        lambda r: _raise(httpx.ReadError("connection reset", request=r)),
        json_response(200, {"result": "success"}),
    )
    async with clock.autojump(), server.client(clock) as client:
        await client.cancel_activation("abc")
    assert 2 == len(server.requests)


async def test_post_not_resent_after_read_timeout() -> None:
    """An order whose response timed out is not sent again: it may have been placed."""
    clock = VirtualClock()
    server = Server(
        lambda r: _raise(httpx.ReadTimeout("timed out", request=r)),
        default=json_response(200, ACTIVATION),
    )
    policy = pf.RetryPolicy(
        reconcile_orders=False
    )  # reconciliation: tests/orders/test_reconcile.py
    async with clock.autojump(), server.client(clock, retry_policy=policy) as client:
        with pytest.raises(pf.APITimeoutError):
            await client.create_activation("netflix", "us")
    assert 1 == len(server.requests)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_post_not_resent_after_server_error(status: int) -> None:
    """An order answered with a 5xx is not retried."""
    clock = VirtualClock()
    server = Server(httpx.Response(status), default=json_response(200, ACTIVATION))
    policy = pf.RetryPolicy(
        reconcile_orders=False
    )  # reconciliation: tests/orders/test_reconcile.py
    async with clock.autojump(), server.client(clock, retry_policy=policy) as client:
        with pytest.raises(pf.ServerError):
            await client.create_activation("netflix", "us")
    assert 1 == len(server.requests)


async def test_post_resent_when_connection_never_made() -> None:
    """An order whose connection could not be made provably never left: it is retried."""
    clock = VirtualClock()
    server = Server(
        lambda r: _raise(httpx.ConnectError("refused", request=r)),
        json_response(200, ACTIVATION),
    )
    async with clock.autojump(), server.client(clock) as client:
        activation = await client.create_activation("netflix", "us")
    assert ACTIVATION["activation_id"] == activation.activation_id
    assert 2 == len(server.requests)


async def test_client_errors_are_not_retried() -> None:
    """A 4xx is final: no retry."""
    server = Server(default=json_response(404, {"errorName": "NotFoundException"}))
    async with server.client() as client:
        with pytest.raises(pf.NotFoundError):
            await client.get_activation("nope")
    assert 1 == len(server.requests)


async def test_retry_after_header_is_honoured() -> None:
    """A 503 with Retry-After waits at least that long before the retry."""
    clock = VirtualClock()
    server = Server(httpx.Response(503, headers={"Retry-After": "4"}), json_response(200, BALANCE))
    async with clock.autojump(), server.client(clock) as client:
        start = clock.monotonic()
        await client.get_balance()
    assert 4.0 <= clock.monotonic() - start


async def test_timeout_maps_to_api_timeout_error() -> None:
    """Exhausted retries on timeouts raise APITimeoutError (also a TimeoutError)."""
    clock = VirtualClock()
    server = Server(default=lambda r: _raise(httpx.ReadTimeout("slow", request=r)))
    async with clock.autojump(), server.client(clock, max_retries=1) as client:
        with pytest.raises(TimeoutError):
            await client.get_balance()
    assert 2 == len(server.requests)


def test_backoff_is_capped_and_jittered() -> None:
    """The policy's delay grows exponentially, stays under the cap, and varies."""
    import random

    policy = pf.RetryPolicy(max_retries=10, backoff_base=0.5, backoff_max=8.0, jitter=0.5)
    rng = random.Random(1)
    delays = [policy.delay(attempt, None, rng) for attempt in range(10)]
    assert all(0 < d <= 8.0 for d in delays)
    assert delays[0] <= 0.5 < delays[3]
    assert len(set(delays)) == len(delays)


async def _backoff_waits(seed: int) -> list[float]:
    """The waits between three attempts of a GET answered 503, 503, 200."""
    clock = VirtualClock()
    times: list[float] = []

    def stamped(response: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
        def reply(request: httpx.Request) -> httpx.Response:
            times.append(clock.monotonic())
            return response

        return reply

    server = Server(
        stamped(httpx.Response(503)),
        stamped(httpx.Response(503)),
        stamped(json_response(200, BALANCE)),
    )
    async with clock.autojump(), server.client(clock, rng=random.Random(seed)) as client:
        await client.get_balance()
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_the_backoff_jitter_comes_from_the_clients_rng() -> None:
    """Two clients seeded alike back off alike; another seed backs off otherwise."""
    assert await _backoff_waits(3) == await _backoff_waits(3)
    assert await _backoff_waits(3) != await _backoff_waits(4)


async def test_rng_must_be_a_random_generator() -> None:
    """rng= takes a random.Random (or None); anything else is refused before any request."""
    with pytest.raises(pf.InvalidParameterError, match="rng"):
        pf.AsyncPlatfone("k", rng=42)  # type: ignore[arg-type]
