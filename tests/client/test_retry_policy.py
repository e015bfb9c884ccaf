"""RetryPolicy: one place for what is retried, how often, how long, and how to switch it off."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import platfone_async as pf
from platfone_async.testing import VirtualClock
from tests._support import ACTIVATION, Server, json_response

pytestmark = pytest.mark.anyio

BALANCE = {"total": 100, "reserved": 0}
TOO_MANY = {"errorName": "TooManyRequestsException", "errorMessage": "slow down"}


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def _limited(clock: VirtualClock, seconds: int) -> httpx.Response:
    reset = str(int(clock.time()) + seconds)
    return json_response(429, TOO_MANY, headers={"x-ratelimit-reset": reset})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"backoff_base": -0.1},
        {"jitter": 2},
        {"deadline": 0},
        {"retry_statuses": [99]},
        {"max_server_wait": float("nan")},
        {"reconcile_delays": ()},
        {"reconcile_delays": (5.0, 1.0)},
        {"clock_skew": -1},
    ],
)
def test_a_policy_outside_its_ranges_is_refused(kwargs: dict[str, Any]) -> None:
    """Each knob is checked when the policy is built (InvalidParameterError, a ValueError)."""
    with pytest.raises(pf.InvalidParameterError):
        pf.RetryPolicy(**kwargs)


def test_none_switches_everything_off() -> None:
    """RetryPolicy.none(): no retries, no 429 waits, no reconciliation."""
    policy = pf.RetryPolicy.none()
    assert (0, 0, False) == (
        policy.max_retries,
        policy.max_rate_limit_waits,
        policy.reconcile_orders,
    )


async def test_the_client_takes_a_policy_or_the_shorthands() -> None:
    """max_retries and rate_limit_wait fill the default policy; a policy is taken as is;
    both at once is refused."""
    policy = pf.RetryPolicy(max_retries=1, deadline=30)
    async with (
        pf.AsyncPlatfone("k", base_url="http://x.test", max_retries=5, rate_limit_wait=9) as short,
        pf.AsyncPlatfone("k", base_url="http://x.test", retry_policy=policy) as given,
    ):
        assert (5, 9.0) == (short.retry_policy.max_retries, short.retry_policy.max_server_wait)
        assert policy is given.retry_policy
    with pytest.raises(pf.InvalidParameterError, match="max_retries"):
        pf.AsyncPlatfone("k", base_url="http://x.test", max_retries=4, retry_policy=policy)
    with pytest.raises(pf.InvalidParameterError, match="retry_policy"):
        pf.AsyncPlatfone("k", base_url="http://x.test", retry_policy=3)  # type: ignore[arg-type]


async def test_none_lets_every_failure_surface_at_once() -> None:
    """With RetryPolicy.none() a 503, a 429 and a lost order answer are raised as they
    come: one request each, no history read."""
    clock = VirtualClock()
    server = Server(
        httpx.Response(503),
        _limited(clock, 10),
        httpx.Response(502),
        default=json_response(200, ACTIVATION),
    )
    async with server.client(clock, retry_policy=pf.RetryPolicy.none()) as client:
        with pytest.raises(pf.ServerError):
            await client.get_balance()
        with pytest.raises(pf.RateLimitError):
            await client.get_balance()
        with pytest.raises(pf.ServerError):
            await client.create_activation("netflix", "us")
    assert 3 == len(server.requests)


async def test_the_deadline_stops_retrying() -> None:
    """deadline=3 s with 503s forever: the error comes within 3 s, long before ten retries."""
    clock = VirtualClock()
    server = Server(default=httpx.Response(503))
    policy = pf.RetryPolicy(max_retries=10, deadline=3.0, jitter=0.0)
    async with clock.autojump(), server.client(clock, retry_policy=policy) as client:
        start = clock.time()
        with pytest.raises(pf.ServerError):
            await client.get_balance()
        took = clock.time() - start
    assert took <= 3.0
    assert 3 == len(server.requests)  # at 0, 0.5 and 1.5 s; the next would be at 3.5 s


async def test_the_deadline_bounds_the_wait_for_a_token() -> None:
    """A call queued behind a 1-per-minute limit with a 5 s deadline: APITimeoutError at
    5 s, nothing sent, the queue empty."""
    clock = VirtualClock()
    server = Server(default=json_response(200, BALANCE))
    policy = pf.RetryPolicy(deadline=5.0)
    limits = {"get_balance": pf.RateLimit(1, 60)}
    async with (
        clock.autojump(),
        server.client(clock, retry_policy=policy, rate_limits=limits) as client,
    ):
        await client.get_balance()
        start = clock.time()
        with pytest.raises(pf.APITimeoutError, match="deadline"):
            await client.get_balance()
        waited = clock.time() - start
        state = (await client.rate_limit_state()).limiters["get_balance"]
    assert (5.0, 1, 0) == (waited, len(server.requests), state.waiters)


async def test_the_deadline_is_not_waited_past_for_a_429() -> None:
    """A 429 resetting in 30 s under a 10 s deadline is raised at once."""
    clock = VirtualClock()
    server = Server(_limited(clock, 30), default=json_response(200, BALANCE))
    policy = pf.RetryPolicy(deadline=10.0)
    async with clock.autojump(), server.client(clock, retry_policy=policy) as client:
        start = clock.time()
        with pytest.raises(pf.RateLimitError):
            await client.get_balance()
        assert start == clock.time()


async def test_a_retry_after_beyond_the_longest_wait_is_raised() -> None:
    """A 503 asking for 10 minutes is not waited for: the 503 is raised."""
    clock = VirtualClock()
    server = Server(httpx.Response(503, headers={"Retry-After": "600"}))
    async with clock.autojump(), server.client(clock) as client:
        with pytest.raises(pf.ServerError):
            await client.get_balance()
    assert 1 == len(server.requests)


async def test_only_the_listed_statuses_are_retried() -> None:
    """retry_statuses={503}: a 502 is final, a 503 retried."""
    clock = VirtualClock()
    server = Server(
        httpx.Response(503), json_response(200, BALANCE), httpx.Response(502), httpx.Response(503)
    )
    policy = pf.RetryPolicy(retry_statuses={503})
    async with clock.autojump(), server.client(clock, retry_policy=policy) as client:
        await client.get_balance()
        with pytest.raises(pf.ServerError) as caught:
            await client.get_balance()
    assert (502, 3) == (caught.value.status_code, len(server.requests))


async def test_timeouts_need_not_be_retried() -> None:
    """retry_timeouts=False: a read timeout on a GET is raised after one attempt."""
    clock = VirtualClock()
    server = Server(default=_timeout)
    policy = pf.RetryPolicy(retry_timeouts=False)
    async with clock.autojump(), server.client(clock, retry_policy=policy) as client:
        with pytest.raises(pf.APITimeoutError):
            await client.get_balance()
    assert 1 == len(server.requests)


async def test_the_429_waits_are_counted() -> None:
    """max_rate_limit_waits=1: one 429 is waited out, the second raised."""
    clock = VirtualClock()
    server = Server(_limited(clock, 2), _limited(clock, 4), json_response(200, BALANCE))
    policy = pf.RetryPolicy(max_rate_limit_waits=1)
    async with clock.autojump(), server.client(clock, retry_policy=policy) as client:
        with pytest.raises(pf.RateLimitError):
            await client.get_balance()
    assert 2 == len(server.requests)


@pytest.mark.parametrize("ahead", [600.0, -600.0])
async def test_a_429s_reset_is_read_against_the_servers_clock(ahead: float) -> None:
    """A host 10 minutes ahead of the server (or behind it) waits the 5 s the server
    asks: the reset is compared with the server's ``Date``, not with the local clock."""
    import email.utils

    clock = VirtualClock()
    sent: list[float] = []

    def limited(request: httpx.Request) -> httpx.Response:
        sent.append(clock.time())
        server_now = int(clock.time() - ahead)
        headers = {
            "x-ratelimit-reset": str(server_now + 5),
            "date": email.utils.formatdate(server_now, usegmt=True),
        }
        return json_response(429, TOO_MANY, headers=headers)

    def balance(request: httpx.Request) -> httpx.Response:
        sent.append(clock.time())
        return json_response(200, BALANCE)

    server = Server(limited, balance)
    async with clock.autojump(), server.client(clock) as client:
        got = await client.get_balance()
    assert 100 == got.total
    assert 5.0 == pytest.approx(sent[1] - sent[0], abs=1.0)
