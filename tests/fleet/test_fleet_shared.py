"""What one worker learns, every worker on the key knows: through a real Redis server.

Two clients on two ``RedisBackend`` objects share nothing in this process (each gets
its own ``KeyLimits``), so they stand for two processes of a fleet; only Redis joins
them. These run on asyncio (redis-py's asyncio client) and on trio (its sync client in
a worker thread).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from platfone_async import (
    AccountBlockedError,
    ActiveActivationsLimitError,
    AsyncPlatfone,
    PlatfoneError,
    RateLimit,
    RateLimitBackendError,
    RedisBackend,
    RetryPolicy,
    SystemClock,
)
from platfone_async.testing import Fault, PlatfoneEmulator, SmsPolicy, VirtualClock

from ._servers import RedisServer, max_in_window

pytestmark = pytest.mark.anyio


class SkewedClock(SystemClock):
    """The real clock on a host whose wall clock is ``offset`` seconds off."""

    __slots__ = ("offset",)

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


async def _backends(url: str, prefix: str, n: int = 2, **kwargs: Any) -> list[RedisBackend]:
    return [RedisBackend.from_url(url, prefix=prefix, **kwargs) for _ in range(n)]


@pytest.fixture
async def pair(redis_url: str, prefix: str) -> AsyncIterator[list[RedisBackend]]:
    """Two backends on one Redis and prefix: two "processes" of one fleet."""
    backends = await _backends(redis_url, prefix)
    try:
        yield backends
    finally:
        for backend in backends:
            await backend.aclose()


def _client(emulator: PlatfoneEmulator, backend: RedisBackend, **kwargs: Any) -> AsyncPlatfone:
    kwargs.setdefault("success_rate_guard", "off")
    return emulator.client(limits_backend=backend, **kwargs)


async def test_two_workers_share_one_window_even_with_clocks_minutes_apart(
    pair: list[RedisBackend],
) -> None:
    """Windows run on Redis's clock: a worker whose clock is 5 minutes ahead still shares
    the budget exactly - 10 calls per 0.5 s at the server, no 429."""
    emulator = PlatfoneEmulator(rate_limits={"get_balance": (10, 0.5)})
    limits = {"get_balance": RateLimit(10, 0.5)}
    async with (
        _client(emulator, pair[0], rate_limits=limits) as first,
        _client(emulator, pair[1], rate_limits=limits, clock=SkewedClock(300)) as skewed,
        anyio.create_task_group() as tg,
    ):
        for client in (first, skewed):
            for _ in range(12):
                tg.start_soon(client.get_balance)
    arrivals = [r.time for r in emulator.requests if r.route == "get_balance"]
    assert 24 == len(arrivals)
    assert [] == [r for r in emulator.requests if r.status == 429]
    assert 10 >= max_in_window(arrivals, 0.5)


# On trio the store's calls run in worker threads, at most 40 at once: only asyncio's
# pool can be asked for more connections than it has.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_more_calls_at_once_than_the_pool_has_connections_all_go_through(
    pair: list[RedisBackend],
) -> None:
    """150 calls at once in one process (redis-py's pool holds 100 connections): each
    waits for a connection - none fails with "Too many connections"."""
    emulator = PlatfoneEmulator(rate_limits={"get_balance": (200, 1.0)})
    failed: list[BaseException] = []

    async def one(client: AsyncPlatfone) -> None:
        try:
            await client.get_balance()
        except RateLimitBackendError as error:
            failed.append(error)

    limits = {"get_balance": RateLimit(200, 1.0)}
    async with (
        _client(emulator, pair[0], rate_limits=limits) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(150):
            tg.start_soon(one, client)
    assert [] == failed
    assert 150 == sum(r.route == "get_balance" for r in emulator.requests)


async def test_the_account_block_stops_every_worker_and_lifts_for_all(
    pair: list[RedisBackend],
) -> None:
    """A LowSuccessRate 429 seen by one worker blocks the other's orders before they are
    sent; unblock_account() on the other lifts it for both."""
    emulator = PlatfoneEmulator(rate_limits=None)
    body = {"errorName": "LowSuccessRateException", "errorMessage": "blocked for 24 h"}
    reset = {"x-ratelimit-reset": str(int(time.time()) + 3600)}
    emulator.inject_fault("create_activation", Fault(status=429, body=body, headers=reset))
    async with _client(emulator, pair[0]) as seen, _client(emulator, pair[1]) as other:
        with pytest.raises(AccountBlockedError):
            await seen.create_activation("telegram", "uk")
        with pytest.raises(AccountBlockedError):
            await other.create_activation("telegram", "uk")
        assert 1 == emulator.request_count("create_activation")
        assert 0 < (await other.rate_limit_state()).account_blocked_for <= 3600
        await other.unblock_account()
        activation = await seen.create_activation("telegram", "uk")
        assert 0.0 == (await seen.rate_limit_state()).account_blocked_for
    assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]


async def test_a_full_account_learned_by_one_worker_holds_back_the_others(
    pair: list[RedisBackend],
) -> None:
    """TooManyActivations answered to one worker is the fleet's: the other worker's order
    waits (here: fails at once, wait_for_slot=False) without being sent."""
    emulator = PlatfoneEmulator(rate_limits=None, max_active=2)
    async with _client(emulator, pair[0]) as first, _client(emulator, pair[1]) as second:
        for _ in range(2):
            await first.create_activation("telegram", "uk")
        with pytest.raises(ActiveActivationsLimitError):
            await first.create_activation("telegram", "uk", wait_for_slot=False)
        sent = emulator.request_count("create_activation")
        with pytest.raises(ActiveActivationsLimitError, match="client-side"):
            await second.create_activation("telegram", "uk", wait_for_slot=False)
        assert sent == emulator.request_count("create_activation")
        state = await second.rate_limit_state()
        assert (2, 0) == (state.slots.in_use, state.slots.available)


async def test_a_slot_freed_by_one_worker_serves_the_others_queue(
    pair: list[RedisBackend],
) -> None:
    """With 1 slot for the fleet, a worker's order waits for the other worker's number to
    end, and is sent once it has."""
    emulator = PlatfoneEmulator(rate_limits=None, max_active=1)
    async with (
        _client(emulator, pair[0], max_active_activations=1) as first,
        _client(emulator, pair[1], max_active_activations=1) as second,
    ):
        held = await first.create_activation("telegram", "uk")
        ordered: list[str] = []

        async def order() -> None:
            ordered.append((await second.create_activation("telegram", "uk")).activation_id)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(order)
                await anyio.sleep(0.3)
                assert ([], 1) == (ordered, emulator.request_count("create_activation"))
                emulator.advance(121)  # cancelable now
                await first.cancel_activation(held)
    assert 1 == len(ordered)
    assert [] == [r for r in emulator.requests if r.status == 429]


async def test_the_success_rate_counts_every_worker(pair: list[RedisBackend]) -> None:
    """An order placed by one worker and its SMS seen by another count once, for both."""
    emulator = PlatfoneEmulator(rate_limits=None, sms_policy=None)
    async with _client(emulator, pair[0]) as first, _client(emulator, pair[1]) as second:
        activation = await first.create_activation("telegram", "uk")
        emulator.deliver_sms(activation.activation_id, "123456")
        await second.get_activation(activation.activation_id)
        states = [await client.rate_limit_state() for client in (first, second)]
    assert [(1, 1)] * 2 == [(s.success_rate.orders, s.success_rate.successes) for s in states]


async def test_another_workers_order_is_never_taken_for_a_foreign_one(
    pair: list[RedisBackend],
) -> None:
    """An order lost on the way is reconciled: another worker's activation of the same
    service, country and window is known to the fleet, so the order finds its own."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock, rate_limits=None, sms_policy=None)
    options: dict[str, Any] = {"clock": clock, "rate_limits": None, "max_active_activations": None}
    emulator.inject_fault("create_activation", Fault(delay=2.0, drop=True, after_processing=True))
    found: list[str] = []
    async with (
        clock.autojump(),
        _client(emulator, pair[0], **options) as lost,
        _client(emulator, pair[1], **options) as other,
    ):

        async def order_lost() -> None:
            found.append((await lost.create_activation("telegram", "uk")).activation_id)

        async with anyio.create_task_group() as tg:
            tg.start_soon(order_lost)
            await clock.sleep(1.0)
            theirs = await other.create_activation("telegram", "uk")
    placed = [a["activation_id"] for a in emulator.activations()]
    assert 2 == len(placed)
    assert [a for a in placed if a != theirs.activation_id] == found


@pytest.fixture
async def own_redis() -> AsyncIterator[RedisServer]:
    """A Redis server of this test's own, to stop and start."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_down_sends_nothing_or_falls_back_and_recovers(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stopped: calls raise RateLimitBackendError and nothing is sent (no order
    either); with on_backend_error="local" they go on under in-process limits, with a
    WARNING. Redis back (empty: no persistence): both work again, once each window was
    held full for one period (here 1 s)."""
    emulator = PlatfoneEmulator(rate_limits=None)
    strict, lenient = (
        RedisBackend.from_url(own_redis.url, prefix=prefix),
        RedisBackend.from_url(own_redis.url, prefix=prefix, on_backend_error="local"),
    )
    no_retry = RetryPolicy(max_retries=0)
    short = {name: RateLimit(100, 1) for name in ("get_balance", "create_activation")}
    async with (
        _client(emulator, strict, retry_policy=no_retry, rate_limits=short) as client,
        _client(emulator, lenient, retry_policy=no_retry, rate_limits=short) as fallback,
    ):
        await client.get_balance()
        await fallback.get_balance()
        own_redis.stop()
        sent = len(emulator.requests)
        with pytest.raises(RateLimitBackendError) as failed:
            await client.get_balance()
        assert failed.value.__cause__ is not None
        with pytest.raises(RateLimitBackendError):
            await client.create_activation("telegram", "uk")
        assert (sent, 0) == (len(emulator.requests), emulator.orders_placed())
        with caplog.at_level(logging.WARNING, logger="platfone_async"):
            await fallback.get_balance()
        assert "in-process limits" in caplog.text
        assert sent + 1 == len(emulator.requests)
        own_redis.start()
        await client.get_balance()
        activation = await client.create_activation("telegram", "uk")
        assert [activation.activation_id] == [a["activation_id"] for a in emulator.activations()]
        assert 1 == (await client.rate_limit_state()).slots.in_use
    for backend in (strict, lenient):
        await backend.aclose()


async def test_a_servers_429_pauses_every_worker_until_its_reset(
    pair: list[RedisBackend],
) -> None:
    """A 429 with x-ratelimit-reset answered to one worker closes that endpoint for the
    other too: nothing reaches the server before the reset, then both calls succeed."""
    emulator = PlatfoneEmulator(rate_limits=None)
    reset_at = int(time.time()) + 2
    body = {"errorName": "TooManyRequestsException", "errorMessage": "slow down"}
    emulator.inject_fault(
        "get_balance",
        Fault(status=429, body=body, headers={"x-ratelimit-reset": str(reset_at)}),
    )
    limits = {"get_balance": RateLimit(100, 60)}
    async with (
        _client(emulator, pair[0], rate_limits=limits) as first,
        _client(emulator, pair[1], rate_limits=limits) as second,
    ):
        with anyio.fail_after(10):
            await first.get_balance()  # 429, waits for the reset, then succeeds
        await second.get_balance()
    records = [r for r in emulator.requests if r.route == "get_balance"]
    assert [429, 200, 200] == [r.status for r in records]
    assert all(r.time >= reset_at - 0.05 for r in records[1:]), [r.time for r in records]


async def test_every_key_expires_shares_one_hash_tag_and_hides_the_api_key(
    pair: list[RedisBackend], redis_url: str, prefix: str
) -> None:
    """What the fleet leaves in Redis: keys under the prefix, one hash tag (Redis
    Cluster), a TTL on each, and no API key in any name."""
    import redis

    emulator = PlatfoneEmulator(sms_policy=SmsPolicy(delay=0.0))
    body = {"errorName": "TooManyRequestsException", "errorMessage": "slow down"}
    emulator.inject_fault(
        "get_prices_by_country",
        Fault(status=429, body=body, headers={"x-ratelimit-reset": str(int(time.time()))}),
    )
    async with _client(emulator, pair[0]) as client:
        activation = await client.create_activation("telegram", "uk")
        await client.get_activation(activation)
        await client.get_prices_by_country()
        await client.rate_limit_state()
    inspector = redis.Redis.from_url(redis_url)  # any event loop: a plain client will do
    try:
        keys = [k.decode() for k in inspector.scan_iter(match=f"{prefix}:*")]
        ttls = [inspector.pttl(key) for key in keys]
    finally:
        inspector.close()
    assert len(keys) >= 6
    assert 1 == len({key.split(":", 1)[1].split("}")[0] for key in keys})
    assert [] == [key for key, ttl in zip(keys, ttls, strict=True) if ttl <= 0]
    assert [] == [key for key in keys if emulator.api_key in key]


async def test_a_slot_freed_while_redis_hangs_is_freed_once_it_answers(
    own_redis: RedisServer, prefix: str
) -> None:
    """Redis frozen (SIGSTOP) while a number is cancelled: the release times out, is
    kept, and reaches Redis before the next slot is taken - no slot is lost."""
    emulator = PlatfoneEmulator(rate_limits=None)
    backend = RedisBackend.from_url(own_redis.url, prefix=prefix, timeout=0.5)
    observer = RedisBackend.from_url(own_redis.url, prefix=prefix)
    process = own_redis.process
    assert process is not None
    try:
        async with (
            _client(emulator, backend, rate_limits=None) as client,
            _client(emulator, observer, rate_limits=None) as other,
        ):
            first = await client.create_activation("telegram", "uk")
            assert 1 == (await other.rate_limit_state()).slots.in_use
            emulator.advance(121)  # cancelable
            # A frozen Redis still takes the bytes sent meanwhile and runs them once it
            # resumes. So that it misses the release for sure, it forgets its scripts:
            # the release's EVALSHA then fails with NOSCRIPT when Redis reads it.
            import redis

            flusher = redis.Redis.from_url(own_redis.url)
            try:
                flusher.script_flush()
            finally:
                flusher.close()
            process.send_signal(signal.SIGSTOP)
            try:
                with anyio.fail_after(10):
                    await client.cancel_activation(first)  # sent; Redis misses the release
            finally:
                process.send_signal(signal.SIGCONT)
            assert 1 == (await other.rate_limit_state()).slots.in_use
            second = await client.create_activation("telegram", "uk")
            state = await other.rate_limit_state()
        assert "canceled" == emulator.activation(first.activation_id)["activation_status"]
        assert (1, second.activation_id) == (
            state.slots.in_use,
            emulator.activations()[-1]["activation_id"],
        )
    finally:
        await backend.aclose()
        await observer.aclose()


async def test_a_backend_made_from_a_redis_client_you_have(redis_url: str, prefix: str) -> None:
    """``RedisBackend(redis.asyncio.Redis(...))`` uses that client (on asyncio; on trio a
    client of the same settings in a thread) and leaves it open on ``aclose()``."""
    import redis.asyncio

    mine = redis.asyncio.Redis.from_url(redis_url)
    backend = RedisBackend(mine, prefix=prefix)
    emulator = PlatfoneEmulator(rate_limits=None)
    try:
        async with _client(emulator, backend) as client:
            activation = await client.create_activation("telegram", "uk")
            state = await client.rate_limit_state()
        await backend.aclose()
        assert (1, activation.activation_id) == (
            state.slots.in_use,
            emulator.activations()[0]["activation_id"],
        )
        if _on_asyncio():  # still open, and it holds the slot
            keys = [key async for key in mine.scan_iter(match=f"{prefix}:*:slots:held")]
            assert 1 == len(keys)
    finally:
        if _on_asyncio():
            await mine.aclose()


def _on_asyncio() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_a_redis_restarted_without_persistence_lets_no_burst_through(
    own_redis: RedisServer, prefix: str
) -> None:
    """Two workers spend a 5-per-second window; Redis restarts empty; right after, they
    ask for 10 more at once. The windows are held full for a period after the restart:
    the server answers no 429 and no rolling second holds more than 5 arrivals."""
    limit, period = 5, 1.0
    emulator = PlatfoneEmulator(rate_limits={"get_balance": (limit, period)})
    backends = await _backends(own_redis.url, prefix)
    mine = {"get_balance": RateLimit(limit, period)}
    strict = RetryPolicy(max_retries=0, max_rate_limit_waits=0)
    refused: list[BaseException] = []

    async def call(client: AsyncPlatfone) -> None:
        try:
            await client.get_balance()
        except PlatfoneError as exc:
            refused.append(exc)

    async with (
        _client(emulator, backends[0], rate_limits=mine, retry_policy=strict) as one,
        _client(emulator, backends[1], rate_limits=mine, retry_policy=strict) as two,
    ):
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for index in range(limit):
                    tg.start_soon(call, (one, two)[index % 2])
            own_redis.stop()
            own_redis.start()
            async with anyio.create_task_group() as tg:
                for index in range(2 * limit):
                    tg.start_soon(call, (one, two)[index % 2])
    for backend in backends:
        await backend.aclose()
    records = [r for r in emulator.requests if r.route == "get_balance"]
    assert ([], 3 * limit) == (refused, len(records))
    assert [] == [r.status for r in records if r.status == 429]
    assert limit >= max_in_window([r.time for r in records], period)


async def test_sessions_waiting_through_a_frozen_redis_get_every_code(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten sessions wait for their SMS; Redis freezes (SIGSTOP) for 3 s and the SMS come
    meanwhile. The default on_backend_error raises for new calls, but the polls and the
    finalizes of the numbers already open go on under in-process limits (one WARNING):
    every code reaches its caller while Redis is still frozen, every number finalized."""
    emulator = PlatfoneEmulator(sms_policy=SmsPolicy(delay=1.5))
    backend = RedisBackend.from_url(own_redis.url, prefix=prefix, timeout=0.3)
    process = own_redis.process
    assert process is not None
    codes: dict[str, tuple[str | None, float]] = {}  # the code each caller got, and when
    outcomes: list[str] = []
    opened: list[str] = []
    all_waiting = anyio.Event()
    resumed: list[float] = []

    async def one(client: AsyncPlatfone) -> None:
        async with client.activation("telegram", "uk") as session:
            opened.append(session.activation.activation_id)
            if 10 == len(opened):
                all_waiting.set()
            state = await session.wait_for_sms(timeout=20, interval=0.3)
            codes[state.activation_id] = (state.sms_code, time.monotonic())
        outcomes.append(str(session.outcome))

    async def freeze_for(seconds: float) -> None:
        await all_waiting.wait()
        process.send_signal(signal.SIGSTOP)
        try:
            await anyio.sleep(seconds)
        finally:
            process.send_signal(signal.SIGCONT)
            resumed.append(time.monotonic())

    try:
        with caplog.at_level(logging.WARNING, logger="platfone_async"):
            async with _client(emulator, backend) as client, anyio.create_task_group() as tg:
                tg.start_soon(freeze_for, 3.0)
                for _ in range(10):
                    tg.start_soon(one, client)
    finally:
        await backend.aclose()
    served = {a["activation_id"]: a["sms_code"] for a in emulator.activations()}
    assert served == {aid: code for aid, (code, _) in codes.items()}
    assert ["finalized"] * 10 == outcomes
    assert ["finalized"] * 10 == [a["activation_status"] for a in emulator.activations()]
    assert [True] * 10 == [at < resumed[0] for _, at in codes.values()]
    assert 1 == caplog.text.count("the numbers already open are watched under in-process")
