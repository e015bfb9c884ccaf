"""The three documented limits, enforced by the client against the emulator's own rules."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from platfone_async import (
    AccountBlockedError,
    ActiveActivationsLimitError,
    AsyncPlatfone,
    RateLimit,
    SuccessRateGuardError,
)
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, SmsPolicy, VirtualClock

pytestmark = pytest.mark.anyio


def _statuses(emulator: PlatfoneEmulator, status: int) -> int:
    return sum(1 for r in emulator.requests if r.status == status)


def _client(emulator: PlatfoneEmulator, api_key: str | None = None, **kwargs: Any) -> AsyncPlatfone:
    return emulator.client(api_key, max_retries=0, **kwargs)


async def test_500_concurrent_balance_calls_draw_no_429(clock: VirtualClock) -> None:
    """500 concurrent get_balance calls: 300 leave at once, the rest a period later, no 429."""
    emulator = PlatfoneEmulator(clock=clock)
    sent_at: list[float] = []
    start = clock.time()

    async def one(client: AsyncPlatfone) -> None:
        await client.get_balance()
        sent_at.append(clock.time() - start)

    async with clock.autojump(), _client(emulator) as client, anyio.create_task_group() as tg:
        for _ in range(500):
            tg.start_soon(one, client)
    assert 500 == len(sent_at)
    assert 0 == _statuses(emulator, 429)
    assert 300 == sum(1 for t in sent_at if t < 1.0)  # the burst leaves at once
    assert min(t for t in sent_at if t >= 1.0) >= 60.0  # the rest: a period later
    assert max(sent_at) < 61.0  # ... and not later than the margin allows


async def test_two_clients_on_one_key_share_the_budget(clock: VirtualClock) -> None:
    """A second client on the same key does not double the budget: 2 x 300 calls, no 429."""
    emulator = PlatfoneEmulator(clock=clock)
    done: list[float] = []
    start = clock.time()

    async def one(client: AsyncPlatfone) -> None:
        await client.get_balance()
        done.append(clock.time() - start)

    async with (
        clock.autojump(),
        _client(emulator) as first,
        _client(emulator) as second,
        anyio.create_task_group() as tg,
    ):
        for _ in range(300):
            tg.start_soon(one, first)
            tg.start_soon(one, second)
    assert 0 == _statuses(emulator, 429)
    assert 300 == sum(1 for t in done if t < 1.0)


async def test_different_keys_have_their_own_budgets(clock: VirtualClock) -> None:
    """Two keys each get their full burst at once."""
    emulator = PlatfoneEmulator(clock=clock)
    other = emulator.add_account()
    done: list[float] = []
    start = clock.time()

    async def one(client: AsyncPlatfone) -> None:
        await client.get_balance()
        done.append(clock.time() - start)

    async with (
        clock.autojump(),
        _client(emulator) as first,
        _client(emulator, other) as second,
        anyio.create_task_group() as tg,
    ):
        for _ in range(300):
            tg.start_soon(one, first)
            tg.start_soon(one, second)
    assert 600 == sum(1 for t in done if t < 1.0)
    assert 0 == _statuses(emulator, 429)


async def test_100_concurrent_orders_never_exceed_20_active(clock: VirtualClock) -> None:
    """100 concurrent order-wait-finalize flows: queued for slots, no TooManyActivations."""
    emulator = PlatfoneEmulator(clock=clock, balance=1_000_000)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.9, 1_000)])
    emulator.set_sms_policy(SmsPolicy(delay=30))
    most_active = 0

    async def one(client: AsyncPlatfone) -> None:
        nonlocal most_active
        activation = await client.create_activation("telegram", "uk")
        active = sum(1 for a in emulator.activations() if a["activation_status"] == "active")
        most_active = max(most_active, active)
        await client.wait_for_sms(activation, interval=10)
        await client.finalize_activation(activation)

    async with clock.autojump(), _client(emulator) as client, anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(one, client)
        await anyio.lowlevel.checkpoint()
    assert 100 == emulator.orders_placed()
    assert 20 == most_active
    assert 0 == _statuses(emulator, 429)
    assert {"finalized"} == {a["activation_status"] for a in emulator.activations()}


async def test_activations_opened_elsewhere_are_learned_and_waited_for(
    clock: VirtualClock,
) -> None:
    """When other processes fill the account, the client learns it from the 429 and waits."""
    emulator = PlatfoneEmulator(clock=clock, balance=1_000_000)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.9, 1_000)])
    async with clock.autojump():
        async with _client(emulator, max_active_activations=None) as elsewhere:
            held = [await elsewhere.create_activation("telegram", "uk") for _ in range(20)]
        async with _client(emulator) as client:
            async with anyio.create_task_group() as tg:

                async def free_one_later() -> None:
                    await clock.sleep(300)
                    emulator.deliver_sms(held[0].activation_id, "1234")
                    async with _client(emulator, max_active_activations=None) as other:
                        await other.finalize_activation(held[0])

                tg.start_soon(free_one_later)
                start = clock.time()
                activation = await client.create_activation("telegram", "uk")
            waited = clock.time() - start
            with pytest.raises(ActiveActivationsLimitError):
                await client.create_activation("telegram", "uk", wait_for_slot=False)
    assert "active" == emulator.activation(activation.activation_id)["activation_status"]
    assert 300 <= waited < 320  # until the other process freed one, plus a probe interval


async def test_server_429_is_waited_out_and_retried(clock: VirtualClock) -> None:
    """A TooManyRequests with a near reset is waited out; the call then succeeds."""
    emulator = PlatfoneEmulator(clock=clock)
    reset = int(clock.time()) + 20
    emulator.inject_fault(
        "get_balance",
        Fault(
            status=429,
            body={"errorName": "TooManyRequestsException", "errorMessage": "slow down"},
            headers={"x-ratelimit-reset": str(reset)},
        ),
    )
    async with clock.autojump(), _client(emulator) as client:
        balance = await client.get_balance()
        assert reset <= clock.time()
    assert 10_000 == balance.total
    assert 2 == emulator.request_count("get_balance")


async def test_low_success_rate_blocks_orders_but_not_settling(clock: VirtualClock) -> None:
    """LowSuccessRate raises AccountBlockedError for every order, queued or new, at once;
    activations already open can still be read and cancelled."""
    emulator = PlatfoneEmulator(clock=clock, balance=1_000_000)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.9, 1_000)])
    async with clock.autojump(), _client(emulator, success_rate_guard="off") as client:
        opened = [await client.create_activation("telegram", "uk") for _ in range(10)]
        clock.advance(1_300)  # all ten expire without an SMS: 0 % success
        with pytest.raises(AccountBlockedError) as caught:
            await client.create_activation("telegram", "uk")
        orders = emulator.orders_placed()
        with pytest.raises(AccountBlockedError):  # refused client-side: nothing sent
            await client.create_activation("telegram", "uk")
        assert orders == emulator.orders_placed()
        assert caught.value.reset_at is not None
        state = await client.get_activation(opened[0])  # reading still works
        assert "expired" == state.activation_status
        assert 0 < (await client.rate_limit_state()).account_blocked_for <= 24 * 3600


async def test_success_rate_guard_raise_refuses_before_ordering(clock: VirtualClock) -> None:
    """In "raise" mode, the order that would take the rate under the floor is not sent."""
    emulator = PlatfoneEmulator(clock=clock, balance=1_000_000, success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.9, 1_000)])
    async with clock.autojump(), _client(emulator, success_rate_guard="raise") as client:
        for _ in range(9):
            await client.create_activation("telegram", "uk")
        with pytest.raises(SuccessRateGuardError) as caught:
            await client.create_activation("telegram", "uk")
    assert 9 == emulator.orders_placed()
    assert 0.1 == caught.value.floor
    assert 9 == caught.value.orders


async def test_success_rate_guard_warns_by_default(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """In the default "warn" mode the order goes out and a WARNING says why it is risky."""
    emulator = PlatfoneEmulator(clock=clock, balance=1_000_000, success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.9, 1_000)])
    with caplog.at_level(logging.WARNING, logger="platfone_async"):
        async with clock.autojump(), _client(emulator) as client:
            for _ in range(10):
                await client.create_activation("telegram", "uk")
    assert 10 == emulator.orders_placed()
    assert any("success rate" in r.getMessage() for r in caplog.records)


async def test_rate_limit_state_reports_tokens_and_slots(clock: VirtualClock) -> None:
    """rate_limit_state() shows what a dashboard needs: tokens, waiters, slots, the rate."""
    emulator = PlatfoneEmulator(clock=clock)
    async with (
        clock.autojump(),
        _client(emulator, rate_limits={"get_balance": RateLimit(5, 60)}) as client,
    ):
        for _ in range(3):
            await client.get_balance()
        state = await client.rate_limit_state()
    balance = state.limiters["get_balance"]
    assert (5, 2) == (balance.calls, balance.available)
    assert 20 == state.slots.capacity
    assert emulator.api_key not in repr(state)


async def test_rate_limits_none_is_unlimited_though_a_limited_client_on_its_key_came_first() -> (
    None
):
    """``rate_limits=None`` turns the windows off for that client, even when another
    client on the key set limits first; the first stays limited, and both share slots."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock, rate_limits=None, success_rate_check=False)
    one_a_minute = {"get_balance": RateLimit(1, 60)}
    async with (
        emulator.client(rate_limits=one_a_minute) as limited,
        emulator.client(rate_limits=None) as unlimited,
    ):
        await limited.get_balance()
        with anyio.fail_after(5):  # real seconds: a limited call would wait 60 virtual ones
            for _ in range(5):
                await unlimited.get_balance()
        await unlimited.create_activation("telegram", "uk")
        state = await limited.rate_limit_state()
    assert (6, 0, 1) == (
        emulator.request_count("get_balance"),
        state.limiters["get_balance"].available,
        state.slots.in_use,
    )
