"""The emulator's per-endpoint request limits: rolling windows per key, as documented."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from platfone_async import DOCUMENTED_RATE_LIMITS, AsyncPlatfone, RateLimit, RateLimitError
from platfone_async.testing import PlatfoneEmulator, VirtualClock

# route -> (method, path): any request to the route counts, whatever its answer.
REQUESTS = {
    "get_balance": ("GET", "/user/balance"),
    "create_activation": ("POST", "/activation"),
    "retry_activation": ("PUT", "/activation/nope/retry"),
    "cancel_activation": ("PUT", "/activation/nope/cancel"),
    "get_activation_history": ("GET", "/activation/history"),
    "get_activation": ("GET", "/activation/nope"),
    "get_countries": ("GET", "/activation/countries"),
    "get_services": ("GET", "/activation/services"),
    "get_prices_by_country": ("GET", "/activation/prices/countries?country_id=uk"),
    "get_prices_by_service": ("GET", "/activation/prices/services?service_id=google"),
    "get_price": ("GET", "/activation/prices/services/google/countries/us"),
}
DOCUMENTED = {
    "get_balance": 300,
    "create_activation": 300,
    "retry_activation": 50,
    "cancel_activation": 50,
    "get_activation_history": 6,
    "get_activation": 300,
    "get_countries": 15,
    "get_services": 15,
    "get_prices_by_country": 6,
    "get_prices_by_service": 6,
    "get_price": 60,
}


async def hit(http: httpx.AsyncClient, route: str) -> httpx.Response:
    method, path = REQUESTS[route]
    body = {"service_id": "nosuchservice", "country_id": "us"}  # a 400 still counts
    return await http.request(method, path, json=body if method == "POST" else None)


def http_of(emulator: PlatfoneEmulator, api_key: str | None = None) -> httpx.AsyncClient:
    return emulator.http_client(headers={"X-Api-Key": api_key or emulator.api_key})


def client_of(emulator: PlatfoneEmulator) -> AsyncPlatfone:
    return emulator.client(
        rate_limits=None,
        max_retries=0,
        rate_limit_wait=0,
        max_active_activations=None,
        success_rate_guard="off",
    )


def test_the_table_is_the_reference_table() -> None:
    """The emulator's defaults are the reference's limits, per 60 s."""
    table = PlatfoneEmulator.DOCUMENTED_RATE_LIMITS
    assert DOCUMENTED == {route: calls for route, (calls, _) in table.items()}
    assert {60.0} == {period for _, period in table.values()}


def test_the_emulator_and_the_client_agree_on_the_table() -> None:
    """The server side enforces exactly what the client side limits itself to."""
    client_table = {
        name: (rl.calls, rl.period) for name, rl in DOCUMENTED_RATE_LIMITS.items() if rl
    }
    assert client_table == dict(PlatfoneEmulator.DOCUMENTED_RATE_LIMITS)


@pytest.mark.anyio
@pytest.mark.parametrize("route", sorted(REQUESTS))
async def test_each_limit_bites_at_exactly_the_documented_count(
    emulator: PlatfoneEmulator, clock: VirtualClock, route: str
) -> None:
    """`calls` requests in a minute pass (whatever they answer); the next is a 429."""
    async with http_of(emulator) as http:
        statuses = {(await hit(http, route)).status_code for _ in range(DOCUMENTED[route])}
        refused = await hit(http, route)
    assert 429 not in statuses
    assert 429 == refused.status_code
    assert "TooManyRequestsException" == refused.json()["errorName"]
    assert str(int(clock.time()) + 60) == refused.headers["x-ratelimit-reset"]


@pytest.mark.anyio
async def test_the_window_rolls_instead_of_resetting(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Six history calls 10 s apart: the 7th waits for the 1st to leave its minute."""
    async with http_of(emulator) as http:
        start = clock.time()
        for _ in range(6):
            assert 200 == (await hit(http, "get_activation_history")).status_code
            clock.advance(10)
        clock.advance(4)  # t = 64 s is past the first call's minute...
        assert 200 == (await hit(http, "get_activation_history")).status_code
        refused = await hit(http, "get_activation_history")  # ...not the second's (t=10)
        clock.advance(start + 70 - clock.time())
        reopened = await hit(http, "get_activation_history")
    assert (429, str(int(start) + 70)) == (
        refused.status_code,
        refused.headers["x-ratelimit-reset"],
    )
    assert 200 == reopened.status_code


@pytest.mark.anyio
async def test_a_refused_request_does_not_count(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """After any number of 429s, the window reopens one period after the first call."""
    async with http_of(emulator) as http:
        for _ in range(6):
            await hit(http, "get_prices_by_country")
        for _ in range(10):
            assert 429 == (await hit(http, "get_prices_by_country")).status_code
        clock.advance(60)
        statuses = [(await hit(http, "get_prices_by_country")).status_code for _ in range(7)]
    assert [200] * 6 + [429] == statuses


@pytest.mark.anyio
async def test_the_client_sees_reset_at(emulator: PlatfoneEmulator, clock: VirtualClock) -> None:
    """Through AsyncPlatfone the 429 is a RateLimitError with the reset time."""
    async with client_of(emulator) as client:
        for _ in range(6):
            await client.get_activation_history()
        with pytest.raises(RateLimitError) as caught:
            await client.get_activation_history()
    reset = dt.datetime.fromtimestamp(int(clock.time()) + 60, dt.timezone.utc)
    assert ("TooManyRequestsException", reset) == (caught.value.error_name, caught.value.reset_at)


@pytest.mark.anyio
async def test_windows_are_per_key(emulator: PlatfoneEmulator) -> None:
    """One key's full window leaves another key's alone."""
    other = emulator.add_account()
    async with http_of(emulator) as http, http_of(emulator, other) as other_http:
        for _ in range(6):
            await hit(http, "get_activation_history")
        assert 429 == (await hit(http, "get_activation_history")).status_code
        assert 200 == (await hit(other_http, "get_activation_history")).status_code


@pytest.mark.anyio
async def test_limits_scale_switch_off_and_override(clock: VirtualClock) -> None:
    """rate_limit_scale shrinks the windows, set_rate_limit replaces one, None removes all."""
    scaled = PlatfoneEmulator(clock=clock, rate_limit_scale=0.5)
    unlimited = PlatfoneEmulator(clock=clock, rate_limits=None)
    custom = PlatfoneEmulator(clock=clock)
    custom.set_rate_limit("get_balance", RateLimit(2, 10.0))
    async with http_of(scaled) as a, http_of(unlimited) as b, http_of(custom) as c:
        scaled_codes = [(await hit(a, "get_activation_history")).status_code for _ in range(4)]
        unlimited_codes = {(await hit(b, "get_activation_history")).status_code for _ in range(50)}
        custom_codes = [(await hit(c, "get_balance")).status_code for _ in range(3)]
        clock.advance(10)
        custom_codes.append((await hit(c, "get_balance")).status_code)
        custom.rate_limits_enabled = False
        custom_codes += [(await hit(c, "get_balance")).status_code for _ in range(5)]
    assert [200, 200, 200, 429] == scaled_codes
    assert {200} == unlimited_codes
    assert [200, 200, 429, 200] + [200] * 5 == custom_codes


@pytest.mark.anyio
async def test_every_request_is_counted_at_arrival(emulator: PlatfoneEmulator) -> None:
    """request_count and the request log see every request, refused ones included."""
    async with http_of(emulator) as http:
        for _ in range(8):
            await hit(http, "get_activation_history")
        await http.get("/no/such/path")
    statuses = [r.status for r in emulator.requests if r.route == "get_activation_history"]
    assert 8 == emulator.request_count("get_activation_history")
    assert [200] * 6 + [429] * 2 == statuses
    assert 1 == emulator.request_count("unknown")
    assert 9 == emulator.request_count(api_key=emulator.api_key)
