"""The per-endpoint limiter: tokens come back one period after the response (virtual time)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.abc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platfone_async._ratelimit._window import SlidingWindowLimiter, default_margin
from platfone_async.testing import VirtualClock

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0
#: Hang guard in real seconds: a stranded waiter would otherwise block forever.
REAL_TIMEOUT = 20


class Boom(Exception):
    """A request that failed."""


async def _call(
    limiter: SlidingWindowLimiter, clock: VirtualClock, log: list[float], latency: float
) -> None:
    async with limiter.acquire():
        log.append(clock.monotonic() - START)
        await clock.sleep(latency)


async def test_burst_leaves_at_once_then_one_period_after_first_response() -> None:
    """A burst of ``calls`` leaves at t=0; call calls+1 leaves period+margin after the first
    response arrived, not before and not later."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(5, 60, clock=clock, margin=0.25)
    sends: list[float] = []
    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(_call, limiter, clock, sends, 2.0 + i)
            await clock.sleep(0.5)
            tg.start_soon(_call, limiter, clock, sends, 1.0)
    assert [0.0] * 5 + [2.0 + 60.25] == sends


async def test_sustained_rate_reaches_the_limit() -> None:
    """Saturated, the limiter sends ``calls`` per ``period + latency + margin``."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(10, 10, clock=clock, margin=0.0)
    sends: list[float] = []
    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(_call, limiter, clock, sends, 0.0)
    assert [float(10 * (i // 10)) for i in range(50)] == sends


async def test_token_returns_after_the_response_even_when_the_request_fails() -> None:
    """A request that raised still holds its token for period + margin after it failed."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(1, 10, clock=clock, margin=0.5)
    try:
        async with limiter.acquire():
            clock.advance(3)
            raise Boom
    except Boom:
        pass
    assert 10.5 == limiter.state().next_return_in
    sends: list[float] = []
    async with clock.autojump():
        await _call(limiter, clock, sends, 0.0)
    assert [13.5] == sends


async def test_waiters_are_served_in_arrival_order() -> None:
    """Queued callers get tokens first come, first served."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(1, 5, clock=clock, margin=0.0)
    order: list[int] = []

    async def call(i: int) -> None:
        await clock.sleep(0.125 * i)  # enqueue in index order
        async with limiter.acquire():
            order.append(i)
            await clock.sleep(1.0)

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for i in reversed(range(6)):
                tg.start_soon(call, i)
    assert list(range(6)) == order


async def test_a_cancelled_waiter_takes_no_token_and_frees_its_place() -> None:
    """Cancelling a queued caller lets the next one leave exactly when the token returns."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(1, 10, clock=clock, margin=0.5)
    sends: dict[str, float] = {}

    async def call(name: str, scope: anyio.CancelScope | None = None) -> None:
        with scope or anyio.CancelScope():
            async with limiter.acquire():
                sends[name] = clock.monotonic() - START
                await clock.sleep(1.0)

    victim = anyio.CancelScope()
    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(call, "first")
            await clock.sleep(0.25)
            tg.start_soon(call, "victim", victim)
            await clock.sleep(0.25)
            tg.start_soon(call, "next")
            await clock.sleep(0.25)
            assert 2 == limiter.state().waiters
            victim.cancel()
            await clock.sleep(0.25)
            assert 1 == limiter.state().waiters
    assert {"first": 0.0, "next": 11.5} == sends


async def test_a_head_waiter_cancelled_while_sleeping_hands_over_the_timer() -> None:
    """When the waiter sleeping on the clock is cancelled, the next one takes over its timer."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(1, 10, clock=clock, margin=0.0)
    sends: list[float] = []
    async with limiter.acquire():
        pass  # the token now returns at t=10
    victim = anyio.CancelScope()

    async def victim_call() -> None:
        with victim:
            await _call(limiter, clock, sends, 0.0)

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(victim_call)
            await clock.sleep(1)
            tg.start_soon(_call, limiter, clock, sends, 0.0)
            await clock.sleep(1)
            victim.cancel()
    assert [10.0] == sends


async def test_a_waiter_cancelled_as_it_is_granted_passes_the_token_on() -> None:
    """A waiter cancelled after a token was handed to it but before it ran takes no token:
    the next waiter leaves at that same moment."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(2, 10, clock=clock, margin=0.0)
    sends: dict[str, float] = {}
    victim = anyio.CancelScope()

    async def call(name: str, scope: anyio.CancelScope | None = None) -> None:
        with scope or anyio.CancelScope():
            async with limiter.acquire():
                sends[name] = clock.monotonic() - START
                if name == "head":
                    victim.cancel()  # the head handed the victim a token a moment ago
                await clock.sleep(1.0)

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(call, "a1")
            tg.start_soon(call, "a2")  # both tokens return at 11
            await clock.sleep(0.5)
            for name in ("head", "victim", "next"):
                tg.start_soon(call, name, victim if name == "victim" else None)
                await clock.sleep(0.0625)
    assert {"a1": 0.0, "a2": 0.0, "head": 11.0, "next": 11.0} == sends


async def test_block_until_holds_everyone_until_the_deadline() -> None:
    """A server 429 closes the bucket: nothing leaves before its reset time."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(5, 60, clock=clock, margin=0.0)
    sends: list[float] = []
    limiter.block_for(30)
    assert 0 == limiter.state().available
    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(_call, limiter, clock, sends, 1.0)
            await clock.sleep(10)
            limiter.block_until(clock.monotonic() + 5)  # earlier than the block: no change
    assert [30.0] * 3 == sends


async def test_block_while_tokens_are_cooling_waits_for_the_later_of_both() -> None:
    """A block shorter than a token's return does not let it out early, a longer one delays."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(1, 10, clock=clock, margin=0.0)
    sends: list[float] = []
    async with limiter.acquire():
        pass
    limiter.block_for(4)
    async with clock.autojump():
        await _call(limiter, clock, sends, 0.0)  # token back at 10, block ends at 4
        limiter.block_for(25)
        await _call(limiter, clock, sends, 0.0)  # token back at 20, block ends at 35
    assert [10.0, 35.0] == sends


async def test_interrupt_makes_every_waiter_raise() -> None:
    """An account-wide block makes every queued caller raise its error at once."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(1, 60, clock=clock)
    raised: list[str] = []

    async def call() -> None:
        try:
            async with limiter.acquire():
                await clock.sleep(1)
        except Boom as exc:
            raised.append(str(exc))

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(call)
            await clock.sleep(0.5)
            limiter.interrupt(lambda: Boom("blocked"))
            await clock.sleep(0.5)
            assert 0 == limiter.state().waiters
    assert ["blocked"] * 3 == raised


async def test_state_counts_tokens_in_use_cooling_and_waiters() -> None:
    """``state()`` reports what a dashboard needs."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(3, 60, clock=clock, margin=0.5, name="get_balance")
    async with limiter.acquire():
        pass
    clock.advance(1)
    async with anyio.create_task_group() as tg:

        async def hold() -> None:
            async with limiter.acquire():
                await anyio.sleep_forever()

        for _ in range(4):
            tg.start_soon(hold)
        await anyio.wait_all_tasks_blocked()
        state = limiter.state()
        tg.cancel_scope.cancel()
    assert ("get_balance", 3, 60.0) == (state.name, state.calls, state.period)
    assert (0, 2, 1, 2) == (state.available, state.in_use, state.cooling, state.waiters)
    assert 59.5 == state.next_return_in
    assert 0.0 == state.blocked_for


async def test_waiting_logs_how_long_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """A call that waited says so on the ``platfone_async`` logger at DEBUG."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(1, 60, clock=clock, margin=0.5, name="get_price")
    sends: list[float] = []
    caplog.set_level(logging.DEBUG, logger="platfone_async")
    async with clock.autojump():
        await _call(limiter, clock, sends, 0.0)
        await _call(limiter, clock, sends, 0.0)
    messages = [r.getMessage() for r in caplog.records if r.name == "platfone_async"]
    assert ["rate limit get_price: waited 60.500 s for a token"] == messages


def test_default_margin_is_50ms_or_half_a_percent_of_short_periods() -> None:
    """The default margin is 50 ms, smaller for periods under 10 s."""
    assert (0.05, 0.01) == (default_margin(60), default_margin(2))


def test_invalid_arguments_are_refused() -> None:
    """Zero calls, a non-positive period or a negative margin raise ValueError."""
    clock = VirtualClock()
    with pytest.raises(ValueError, match="calls"):
        SlidingWindowLimiter(0, 1, clock=clock)
    with pytest.raises(ValueError, match="period"):
        SlidingWindowLimiter(1, 0, clock=clock)
    with pytest.raises(ValueError, match="margin"):
        SlidingWindowLimiter(1, 1, clock=clock, margin=-1)


# -- the guarantee, for any schedule ---------------------------------------------------

# Times are multiples of 1/16 s so that every sum is exact in floating point.
_tick = st.integers(min_value=0, max_value=160).map(lambda n: n / 16)
_call_spec = st.fixed_dictionaries(
    {
        "gap": _tick,
        "up": _tick,
        "down": _tick,
        "cancel_after": st.none() | _tick,
        "raises": st.booleans(),
        "block": st.none() | st.integers(min_value=1, max_value=400).map(lambda n: n / 16),
    }
)
_schedule = st.lists(st.lists(_call_spec, min_size=1, max_size=6), min_size=1, max_size=8)


class _Record:
    """One call of a schedule, as the test saw it (times relative to START)."""

    __slots__ = ("arrival", "cancelled", "enter", "exit", "send", "seq")

    def __init__(self, seq: int, enter: float) -> None:
        self.seq = seq
        self.enter = enter
        self.send: float | None = None
        self.arrival: float | None = None
        self.exit: float | None = None
        self.cancelled: float | None = None


class _Sent:
    """A call that left: its send, arrival (None if cut short) and response times."""

    __slots__ = ("arrival", "exit", "send", "seq")

    def __init__(self, record: _Record) -> None:
        assert record.send is not None
        assert record.exit is not None
        self.seq = record.seq
        self.send = record.send
        self.arrival = record.arrival
        self.exit = record.exit


async def _run_schedule(
    limiter: SlidingWindowLimiter,
    clock: VirtualClock,
    schedule: list[list[dict[str, Any]]],
) -> tuple[list[_Record], list[tuple[float, float]]]:
    records: list[_Record] = []
    blocks: list[tuple[float, float]] = []

    def now() -> float:
        return clock.monotonic() - START

    async def cancel_later(scope: anyio.CancelScope, delay: float) -> None:
        await clock.sleep(delay)
        scope.cancel()

    async def one_call(spec: dict[str, Any], tg: anyio.abc.TaskGroup) -> None:
        record = _Record(len(records), now())
        records.append(record)
        with anyio.CancelScope() as scope:
            if spec["cancel_after"] is not None:
                tg.start_soon(cancel_later, scope, spec["cancel_after"])
            try:
                async with limiter.acquire():
                    record.send = now()
                    try:
                        await clock.sleep(spec["up"])
                        record.arrival = now()
                        await clock.sleep(spec["down"])
                        if spec["block"] is not None:
                            limiter.block_until(clock.monotonic() + spec["block"])
                            blocks.append((now(), now() + spec["block"]))
                        if spec["raises"]:
                            raise Boom
                    finally:
                        record.exit = now()
            except Boom:
                pass
        if record.send is None:
            record.cancelled = now()

    async def task(calls: list[dict[str, Any]], tg: anyio.abc.TaskGroup) -> None:
        for spec in calls:
            await clock.sleep(spec["gap"])
            await one_call(spec, tg)

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for calls in schedule:
                tg.start_soon(task, calls, tg)
    return records, blocks


def _check_window(sent: list[_Sent], calls: int, period: float) -> None:
    # Worst case: each request may arrive anywhere between its send and its response.
    for t in [r.exit for r in sent] + [r.send - period for r in sent]:
        reachable = sum(1 for r in sent if r.send <= t + period and r.exit >= t)
        assert reachable <= calls, f"{reachable} requests may arrive in [{t}, {t + period}]"
    arrivals = [r.arrival for r in sent if r.arrival is not None]
    for times in ([r.send for r in sent], arrivals):
        for t in times:
            assert sum(1 for u in times if t <= u <= t + period) <= calls


def _check_no_stranded_token(
    records: list[_Record],
    sent: list[_Sent],
    blocks: list[tuple[float, float]],
    calls: int,
    hold: float,
) -> None:
    cooling = [(r.send, r.exit + hold) for r in sent]
    # A queued call is waiting from its enter until its send, or until it was cancelled.
    waits = [(r.enter, r.send if r.send is not None else r.cancelled) for r in records]
    moments = sorted({t for span in cooling + waits for t in span if t is not None})
    for t in moments:
        waiting = sum(1 for enter, left in waits if enter <= t and (left is None or left > t))
        if not waiting:
            continue
        held = sum(1 for send, back in cooling if send <= t < back)
        blocked = any(set_at <= t < until for set_at, until in blocks)
        assert blocked or calls == held, f"a token was free at {t} while {waiting} waited"


def _check_fifo(sent: list[_Sent]) -> None:
    sends = [r.send for r in sorted(sent, key=lambda r: r.seq)]
    assert sorted(sends) == sends


def _check_blocks(sent: list[_Sent], blocks: list[tuple[float, float]]) -> None:
    for set_at, until in blocks:
        assert [] == [r.send for r in sent if set_at < r.send < until]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    calls=st.integers(min_value=1, max_value=4),
    period=st.sampled_from([1.0, 5.0, 10.0]),
    margin=st.sampled_from([0.0625, 0.5]),
    schedule=_schedule,
)
async def test_any_schedule_keeps_the_window_and_strands_no_token(
    calls: int, period: float, margin: float, schedule: list[list[dict[str, Any]]]
) -> None:
    """Any schedule, latencies, failures, 429 blocks and cancellations: never more than
    ``calls`` arrivals in a rolling period, FIFO, and no caller waits while a token is free."""
    clock = VirtualClock(start=START)
    limiter = SlidingWindowLimiter(calls, period, clock=clock, margin=margin)
    records, blocks = await _run_schedule(limiter, clock, schedule)
    assert [] == [r for r in records if r.send is None and r.cancelled is None]
    sent = [_Sent(r) for r in records if r.send is not None]
    _check_window(sent, calls, period)
    _check_fifo(sent)
    _check_blocks(sent, blocks)
    _check_no_stranded_token(records, sent, blocks, calls, period + margin)
    state = limiter.state()
    assert (0, 0) == (state.in_use, state.waiters)
    if not state.blocked_for:
        assert calls == state.available + state.cooling
