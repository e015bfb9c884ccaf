"""Against a real hostile server on loopback: typed errors, bounded time and memory, no
redirect followed, and the key never echoed back - for reads, the order, writes and the
watch."""

from __future__ import annotations

import gc
import json
import time
import traceback
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

import platfone_async as pf
from tests._hostile import (
    HostileServer,
    Mode,
    answer,
    by_method,
    echo,
    endless,
    hostile_server,
    redirect,
    trickle,
)
from tests._support import ACTIVATION, AID, API_KEY

pytestmark = pytest.mark.anyio

Call = Callable[[pf.AsyncPlatfone], Awaitable[object]]

#: One call per endpoint family (the watch has its own tests below).
FAMILIES: dict[str, Call] = {
    "read": lambda c: c.get_balance(),
    "page": lambda c: c.get_activation_history(),
    "order": lambda c: c.create_activation("netflix", "us"),
    "write": lambda c: c.cancel_activation(AID),
}

#: Seconds the reconciliation of an unanswered order waits before each history read.
QUICK_RECONCILE = pf.RetryPolicy(max_retries=0, reconcile_delays=(0.0, 0.01))


@asynccontextmanager
async def _client(server: HostileServer, **kwargs: Any) -> AsyncIterator[pf.AsyncPlatfone]:
    kwargs.setdefault("retry_policy", QUICK_RECONCILE)
    async with pf.AsyncPlatfone(
        API_KEY, base_url=server.base_url, rate_limits=None, **kwargs
    ) as client:
        yield client


def _shown(error: BaseException) -> str:
    """All an exception shows or keeps: str, repr, attributes, body, response, traceback."""
    parts = [str(error), repr(error), repr(vars(error))]
    parts += traceback.format_exception(type(error), error, error.__traceback__)
    response = getattr(error, "response", None)
    if response is not None:
        parts += [response.text, repr(response.headers), repr(response.request.headers)]
        parts += [str(response.request.url), repr(getattr(error, "headers", None))]
    return "\n".join(parts)


# -- every answer a typed outcome -----------------------------------------------------------


async def test_a_deeply_nested_balance_is_a_decode_error() -> None:
    """`[` x 100,000 over a real socket: ResponseDecodeError, not RecursionError."""
    async with hostile_server(answer(200, b"[" * 100_000)) as server, _client(server) as client:
        with pytest.raises(pf.ResponseDecodeError, match="nested too deeply"):
            await client.get_balance()


async def test_a_deeply_nested_order_answer_is_reconciled() -> None:
    """The order's answer (and the history's) too deep to parse: reconciled, then
    OrderOutcomeUnknownError naming the decode error - sent once."""
    async with hostile_server(answer(200, b"[" * 100_000)) as server, _client(server) as client:
        with pytest.raises(pf.OrderOutcomeUnknownError) as caught:
            await client.create_activation("netflix", "us")
    assert isinstance(caught.value.last_error, pf.ResponseDecodeError)
    assert 1 == sum(r.method == "POST" for r in server.requests)


# -- bounded memory ---------------------------------------------------------------------------

CAP = 4 * 1024 * 1024


@pytest.mark.parametrize("declare", [50_000_000, None], ids=["declared-50MB", "chunked-endless"])
async def test_a_huge_answer_costs_about_the_cap(declare: int | None) -> None:
    """A 50 MB (or endless) answer: ResponseDecodeError once the cap is read, and the
    call's peak memory stays under the cap plus a small margin."""
    async with (
        hostile_server(endless(declare=declare)) as server,
        _client(server, max_response_bytes=CAP) as client,
    ):
        gc.collect()
        tracemalloc.start()
        try:
            with pytest.raises(pf.ResponseDecodeError, match="max_response_bytes") as caught:
                await client.get_prices_by_country()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert caught.value.body_truncated
    assert peak < CAP + 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {CAP / 1e6:.1f} MB cap"


# -- bounded time ------------------------------------------------------------------------------

DEADLINE = 0.15


@pytest.mark.parametrize("call", FAMILIES.values(), ids=FAMILIES.keys())
async def test_a_trickling_server_fails_each_family_within_the_deadline(call: Call) -> None:
    """One byte every 50 ms: every call ends with a typed timeout within its deadline
    (an order's, reconciled through a history that trickles too, with the outcome
    unknown), never hangs."""
    async with (
        hostile_server(trickle(0.05)) as server,
        _client(server, request_deadline=DEADLINE) as client,
    ):
        started = time.monotonic()
        with pytest.raises((pf.APITimeoutError, pf.OrderOutcomeUnknownError)) as caught:
            await call(client)
        elapsed = time.monotonic() - started
    requests = len(server.requests)
    assert elapsed < DEADLINE * requests + 0.5, f"{elapsed:.2f} s for {requests} requests"
    if isinstance(caught.value, pf.OrderOutcomeUnknownError):
        assert isinstance(caught.value.last_error, pf.APITimeoutError)
        assert 1 == sum(r.method == "POST" for r in server.requests)
    else:
        assert f"deadline of {DEADLINE:g} s" in str(caught.value)


async def test_the_deadline_follows_the_timeout_unless_set() -> None:
    """timeout=0.3 bounds the request as a whole too: a trickle stops within it."""
    async with hostile_server(trickle(0.05)) as server, _client(server, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(pf.APITimeoutError, match=r"deadline of 0\.3 s"):
            await client.get_balance()
    assert time.monotonic() - started < 0.8


async def test_a_watch_on_a_trickling_server_ends_at_its_timeout() -> None:
    """wait_for_sms polls a trickling server: each poll is cut at the deadline, and the
    wait ends with WaitTimeoutError at its own timeout."""
    async with (
        hostile_server(trickle(0.05)) as server,
        _client(server, request_deadline=0.1) as client,
    ):
        started = time.monotonic()
        with pytest.raises(pf.WaitTimeoutError):
            await client.wait_for_sms(AID, timeout=0.4, interval=0.05)
    assert time.monotonic() - started < 1.0
    assert len(server.requests) >= 1


# -- redirects are never followed -------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("call", FAMILIES.values(), ids=FAMILIES.keys())
async def test_a_redirect_is_an_error_and_the_target_hears_nothing(status: int, call: Call) -> None:
    """Even through the user's own client that follows redirects: an APIError naming the
    status and the target host, and zero requests (so no key) reach the target."""
    good = json.dumps({**ACTIVATION, "total": 1, "reserved": 0}).encode()
    async with (
        hostile_server(answer(200, good)) as target,
        hostile_server(redirect(status, f"http://localhost:{target.port}/stolen")) as server,
        httpx.AsyncClient(follow_redirects=True) as http,
        _client(server, http_client=http) as client,
    ):
        with pytest.raises(pf.APIError) as caught:
            await call(client)
        slots = (await client.rate_limit_state()).slots
    assert [] == target.requests
    assert status == caught.value.status_code
    assert f"({status}) to localhost" in str(caught.value)
    assert 1 == len(server.requests)
    assert 0 == slots.in_use  # a redirected order placed nothing here


# -- the key never echoes back ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (echo(400), pf.BadRequestError),
        (echo(502, html=True), pf.ServerError),
        (echo(200), pf.BadRequestError),  # an error object in a 200
    ],
    ids=["400-json", "502-html", "200-error-object"],
)
@pytest.mark.parametrize("call", FAMILIES.values(), ids=FAMILIES.keys())
async def test_an_echoed_request_never_shows_the_key(
    mode: Mode, expected: type[pf.APIError], call: Call
) -> None:
    """An error page quoting the request (X-Api-Key and all): the error's str, repr,
    .body, .response, .headers and traceback show the mask, never the key."""
    async with hostile_server(mode) as server, _client(server) as client:
        with pytest.raises(pf.PlatfoneError) as caught:
            await call(client)
    error = caught.value
    if isinstance(error, pf.OrderOutcomeUnknownError):  # the 502 to an order
        assert isinstance(error.last_error, expected)
        error = error.last_error
    assert isinstance(error, expected)
    assert API_KEY in server.requests[0].head.decode()  # the server did echo it
    shown = _shown(caught.value) + _shown(error)
    assert API_KEY not in shown
    assert "X-Api-Key: ***" in error.body
    assert isinstance(error, pf.APIError)
    assert error.response is not None
    assert "***" == error.response.request.headers["x-api-key"]
    assert error.headers == error.response.headers


async def test_a_session_settles_against_a_trickling_server_in_bounded_time() -> None:
    """The order is answered, then every poll, cancel and finalize trickles: leaving the
    block ends within bounded time - each request cut at its deadline, settling given up
    a margin after expire_at - never a hang, and the unreadable state is not raised."""
    expire_at = int(time.time()) + 1
    opened = {**ACTIVATION, "expire_at": expire_at, "cancelable_after": None}
    mode = by_method(POST=answer(200, json.dumps(opened).encode()), other=trickle(0.05))
    failure: pf.PlatfoneError | None = None
    async with (
        hostile_server(mode) as server,
        _client(server, request_deadline=0.1) as client,
    ):
        started = time.monotonic()
        try:
            async with client.activation("netflix", "us"):
                pass
        except pf.PlatfoneError as error:
            failure = error
        elapsed, ended = time.monotonic() - started, time.time()
    # Settling gives up 5 s after expire_at; a hang would run far past that.
    assert ended < expire_at + 7.0, f"{elapsed:.1f} s"
    assert failure is None or isinstance(failure, pf.APITimeoutError)
    assert 1 == sum(r.method == "POST" for r in server.requests)
    assert len(server.requests) >= 2


async def test_staggered_requests_each_meet_their_own_deadline() -> None:
    """Requests started one after another on one client, all trickled: each fails its
    own deadline after it started (one timer serves them all on asyncio), not later."""
    elapsed: list[float] = []

    async def timed(client: pf.AsyncPlatfone) -> None:
        started = time.monotonic()
        with pytest.raises(pf.APITimeoutError):
            await client.get_balance()
        elapsed.append(time.monotonic() - started)

    async with (
        hostile_server(trickle(0.02)) as server,
        _client(server, request_deadline=DEADLINE) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(3):
            tg.start_soon(timed, client)
            await anyio.sleep(DEADLINE / 3)
    assert 3 == len(elapsed)
    assert all(DEADLINE * 0.9 <= e < DEADLINE + 0.25 for e in elapsed), elapsed
