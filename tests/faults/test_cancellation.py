"""Cancelled at any wait, a call leaves no token, slot, task or open connection behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

import platfone_async as pf
from platfone_async._ratelimit import LimiterState
from platfone_async.testing import Fault, PlatfoneEmulator, VirtualClock
from tests._faultkit import API_KEY, CountingTransport, new_emulator

pytestmark = pytest.mark.anyio


class Rig:
    """An emulator and a client whose transport counts what is open."""

    def __init__(self, clock: VirtualClock, **client_args: Any) -> None:
        self.clock = clock
        self.emulator: PlatfoneEmulator = new_emulator(clock)
        self.transport = CountingTransport(httpx.ASGITransport(app=self.emulator.app))
        self.client = pf.AsyncPlatfone(
            API_KEY,
            base_url=self.emulator.base_url,
            http_client=httpx.AsyncClient(transport=self.transport),
            clock=clock,
            **client_args,
        )

    async def cancel_after(self, seconds: float, call: Callable[[], Awaitable[object]]) -> bool:
        """Run ``call`` and cancel it ``seconds`` later; whether it was still running."""
        finished = False
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                nonlocal finished
                await call()
                finished = True

            tg.start_soon(run)
            await self.clock.sleep(seconds)
            tg.cancel_scope.cancel()
        return not finished

    async def limiter(self, endpoint: str) -> LimiterState:
        return (await self.client.rate_limit_state()).limiters[endpoint]


def _tasks() -> int | None:
    """Tasks alive now (asyncio); None on trio, whose tasks cannot outlive their nursery."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return None


@asynccontextmanager
async def rig(clock: VirtualClock, **client_args: Any) -> AsyncIterator[Rig]:
    """A :class:`Rig` under autojump; on the way out, no task and no connection is left."""
    async with clock.autojump():
        before = _tasks()
        the_rig = Rig(clock, **client_args)
        async with the_rig.client:
            yield the_rig
        await clock.sleep(120)  # anything left running would act now
        assert 0 == the_rig.transport.open
        assert before == _tasks()


async def test_cancelled_waiting_for_a_token_takes_none() -> None:
    """A call queued behind a 1-per-minute limit, cancelled, takes no token and sends
    nothing; the next call a minute later goes at once."""
    clock = VirtualClock()
    limits = {"get_balance": pf.RateLimit(1, 60)}
    async with rig(clock, rate_limits=limits) as r:
        await r.client.get_balance()
        assert await r.cancel_after(5, r.client.get_balance)
        state = await r.limiter("get_balance")
        assert (0, 0, 1) == (state.waiters, state.in_use, r.emulator.request_count("get_balance"))
        await clock.sleep(60)
        start = clock.time()
        await r.client.get_balance()
        assert start == clock.time()


async def test_cancelled_waiting_for_a_slot_takes_none() -> None:
    """An order queued for the only activation slot, cancelled, leaves the queue empty and
    places nothing."""
    clock = VirtualClock()
    async with rig(clock, max_active_activations=1) as r:
        await r.client.create_activation("telegram", "uk")
        assert await r.cancel_after(5, lambda: r.client.create_activation("telegram", "uk"))
        slots = (await r.client.rate_limit_state()).slots
    assert (0, 1, 1) == (slots.waiters, slots.in_use, r.emulator.orders_placed())


async def test_an_order_cancelled_before_its_request_left_gives_its_slot_back() -> None:
    """An order holding a slot but queued for a rate-limit token, cancelled: the slot is
    released at once (nothing left, so nothing can have been placed)."""
    clock = VirtualClock()
    limits = {"create_activation": pf.RateLimit(1, 60)}
    async with rig(clock, rate_limits=limits) as r:
        await r.client.create_activation("telegram", "uk")
        assert await r.cancel_after(5, lambda: r.client.create_activation("telegram", "uk"))
        slots = (await r.client.rate_limit_state()).slots
        token = await r.limiter("create_activation")
    assert (1, 1, 0) == (slots.in_use, slots.bound, token.waiters)
    assert 1 == r.emulator.orders_placed()


async def test_cancelled_during_a_retry_sleep_sends_nothing_more() -> None:
    """A 503 asking for a 30 s pause; cancelled 5 s in: one request, token back."""
    clock = VirtualClock()
    async with rig(clock) as r:
        r.emulator.inject_fault("get_balance", Fault(status=503, headers={"retry-after": "30"}))
        assert await r.cancel_after(5, r.client.get_balance)
        await clock.sleep(60)
        state = await r.limiter("get_balance")
    assert (1, 0) == (r.emulator.request_count("get_balance"), state.in_use)


async def test_cancelled_during_a_rate_limit_wait_sends_nothing_more() -> None:
    """A 429 with a 40 s reset; cancelled 5 s into the wait: no second request."""
    clock = VirtualClock()
    async with rig(clock) as r:
        reset = str(int(clock.time()) + 40)
        fault = Fault(
            status=429,
            body={"errorName": "TooManyRequestsException"},
            headers={"x-ratelimit-reset": reset},
        )
        r.emulator.inject_fault("get_balance", fault)
        assert await r.cancel_after(5, r.client.get_balance)
        await clock.sleep(60)
    assert 1 == r.emulator.request_count("get_balance")


async def test_cancelled_between_polls_stops_polling() -> None:
    """wait_for_sms cancelled between two polls: no poll after the cancel."""
    clock = VirtualClock()
    async with rig(clock) as r:
        activation = await r.client.create_activation("google", "uk")
        assert await r.cancel_after(15, lambda: r.client.wait_for_sms(activation))
        polls = r.emulator.request_count("get_activation")
        await clock.sleep(60)
        assert polls == r.emulator.request_count("get_activation")
        assert 2 == polls


async def test_cancelled_during_a_poll_in_flight_closes_it() -> None:
    """A poll held 3 s by the server, cancelled after 1 s: the request is abandoned, its
    token stamped and returned, the watcher gone."""
    clock = VirtualClock()
    async with rig(clock) as r:
        activation = await r.client.create_activation("google", "uk")
        r.emulator.inject_fault("get_activation", Fault(delay=3))
        watch = r.client.watch_activation(activation)

        async def first_state() -> None:
            async for _ in watch:
                pass

        assert await r.cancel_after(1, first_state)
        assert 0 == r.transport.open
        assert 0 == (await r.limiter("get_activation")).in_use


async def test_an_order_in_flight_is_seen_through_and_its_slot_bound() -> None:
    """An order cancelled while its request is out completes: the number is known, its
    slot bound to it, and nothing else is sent."""
    clock = VirtualClock()
    async with rig(clock) as r:
        r.emulator.inject_fault("create_activation", Fault(delay=3))
        # Seen through: the call returns its activation; the cancellation lands after.
        assert not await r.cancel_after(1, lambda: r.client.create_activation("telegram", "uk"))
        slots = (await r.client.rate_limit_state()).slots
        placed = [a["activation_id"] for a in r.emulator.activations()]
    assert (1, 1, 1) == (len(placed), slots.in_use, slots.bound)
    assert r.client._orders.book.is_known(placed[0])


async def test_a_session_cancelled_during_its_order_settles_the_number() -> None:
    """A session whose order is in flight when the task is cancelled: the number it got
    is cancelled on the way out, its slot released."""
    clock = VirtualClock()
    async with rig(clock) as r:
        r.emulator.inject_fault("create_activation", Fault(delay=3))

        async def hold() -> None:
            async with r.client.activation("google", "uk") as session:
                await session.wait_for_sms()

        assert await r.cancel_after(1, hold)
        slots = (await r.client.rate_limit_state()).slots
        states = [(a["activation_status"], a["billing_status"]) for a in r.emulator.activations()]
    assert [("canceled", "released")] == states
    assert 0 == slots.in_use


async def test_cancelled_while_reconciling_keeps_the_slot_for_the_unknown_order() -> None:
    """Cancelled while looking for a lost order: its slot stays taken (the order may
    exist), no token is held, nothing more is sent."""
    clock = VirtualClock()
    async with rig(clock) as r:
        r.emulator.inject_fault("create_activation", Fault(status=504, after_processing=True))
        assert await r.cancel_after(0.5, lambda: r.client.create_activation("telegram", "uk"))
        slots = (await r.client.rate_limit_state()).slots
        history = await r.limiter("get_activation_history")
    assert (1, 1) == (slots.in_use, slots.bound)
    assert (0, 0) == (history.in_use, r.emulator.request_count("get_activation_history"))
