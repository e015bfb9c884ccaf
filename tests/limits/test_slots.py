"""The 20-active-activations limit as a counted resource (virtual time)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platfone_async._ratelimit._slots import ActivationSlots, SlotToken
from platfone_async.testing import VirtualClock
from platfone_async.testing._clock import _wait_all_tasks_blocked as _settle

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0
REAL_TIMEOUT = 20


class Blocked(Exception):
    """An account-wide block."""


def _now(clock: VirtualClock) -> float:
    return clock.time() - START


async def _take_all(slots: ActivationSlots) -> list[SlotToken]:
    return [await slots.acquire() for _ in range(slots.capacity)]


async def test_capacity_slots_are_free_and_the_next_order_waits_for_a_release() -> None:
    """``capacity`` orders take a slot at once; the next one waits until a slot is released."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(3, clock=clock)
    tokens = await _take_all(slots)
    got: list[float] = []

    async def order() -> None:
        await slots.acquire()
        got.append(_now(clock))

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(order)
            await clock.sleep(7)
            state = slots.state()
            assert (3, 0, 1) == (state.in_use, state.available, state.waiters)
            tokens[1].release()
    assert [7.0] == got


async def test_waiters_get_slots_in_arrival_order() -> None:
    """Orders queued for a slot are served first come, first served."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(1, clock=clock)
    token = await slots.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await clock.sleep(0.125 * i)
        mine = await slots.acquire()
        order.append(i)
        await clock.sleep(1)
        mine.release()

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for i in reversed(range(5)):
                tg.start_soon(waiter, i)
            await clock.sleep(1)
            token.release()
    assert list(range(5)) == order


async def test_observing_an_ended_activation_releases_its_slot() -> None:
    """A bound slot comes back when the SDK sees its activation end; a live one stays."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(2, clock=clock)
    first, second = await _take_all(slots)
    first.bind("a1", START + 1200)
    second.bind("a2", START + 1200)
    slots.observe("a1", ended=False)
    slots.observe("unknown", ended=True)
    assert 2 == slots.state().in_use
    slots.observe("a1", ended=True)
    assert (1, 1, True) == (slots.state().in_use, slots.state().bound, first.released)


async def test_a_bound_slot_comes_back_by_itself_after_expire_at() -> None:
    """A waiter gets the slot of an expired activation at expire_at plus the grace, no polling."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(1, clock=clock, expiry_grace=2.0)
    token = await slots.acquire()
    token.bind("a1", datetime.fromtimestamp(START + 600, tz=timezone.utc))
    assert 602.0 == slots.state().next_expiry_in
    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump():
            await slots.acquire()
    assert (602.0, True) == (_now(clock), token.released)


async def test_queued_orders_take_expiring_slots_one_after_another() -> None:
    """Each queued order gets the slot of the next expiring activation at its expiry."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(1, clock=clock, expiry_grace=0.0)
    (await slots.acquire()).bind("a0", START + 100)
    got: list[float] = []

    async def order(i: int) -> None:
        await clock.sleep(i)
        token = await slots.acquire()
        got.append(_now(clock))
        token.bind(f"a{i + 1}", clock.time() + 100)

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(order, i)
    assert [100.0, 200.0, 300.0] == got


async def test_observe_moves_the_expiry_of_a_live_activation() -> None:
    """A later ``expire_at`` seen in a response moves the slot's automatic return."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(1, clock=clock, expiry_grace=0.0)
    token = await slots.acquire()
    token.bind("a1", START + 100)
    slots.observe("a1", ended=False, expire_at=START + 250)
    async with clock.autojump():
        await slots.acquire()
    assert 250.0 == _now(clock)


async def test_a_slot_released_by_hand_is_not_released_again_at_expiry() -> None:
    """Releasing is idempotent: an expiry after a release frees nothing twice."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(2, clock=clock, expiry_grace=0.0)
    token = await slots.acquire()
    token.bind("a1", START + 10)
    token.release()
    token.release()
    clock.advance(20)
    assert (0, 2) == (slots.state().in_use, slots.state().available)
    with pytest.raises(RuntimeError, match="released"):
        token.bind("a1", None)


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    """Cancelling a queued order leaves the slot to the next one in line."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(1, clock=clock)
    token = await slots.acquire()
    got: list[str] = []
    victim = anyio.CancelScope()

    async def order(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await slots.acquire()
            got.append(name)

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(order, "victim", victim)
            await clock.sleep(1)
            tg.start_soon(order, "next", anyio.CancelScope())
            await clock.sleep(1)
            victim.cancel()
            await clock.sleep(1)
            assert 1 == slots.state().waiters
            token.release()
    assert (["next"], 1) == (got, slots.state().in_use)


async def test_timeout_raises_timeout_error_and_frees_the_place() -> None:
    """``acquire(timeout=...)`` raises TimeoutError after that many clock seconds; 0 means
    do not wait; the next waiter is not held up."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(1, clock=clock)
    token = await slots.acquire()
    with pytest.raises(TimeoutError):
        await slots.acquire(timeout=0)
    outcome: list[tuple[str, float]] = []

    async def order(name: str, timeout: float | None) -> None:
        try:
            await slots.acquire(timeout=timeout)
        except TimeoutError:
            outcome.append((f"{name} timed out", _now(clock)))
        else:
            outcome.append((f"{name} got a slot", _now(clock)))

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(order, "impatient", 30.0)
            await clock.sleep(1)
            tg.start_soon(order, "patient", None)
            await clock.sleep(59)
            token.release()
    assert [("impatient timed out", 30.0), ("patient got a slot", 60.0)] == outcome


async def test_server_full_shrinks_capacity_to_what_is_held_here() -> None:
    """A TooManyActivations refusal means the rest is held elsewhere: orders wait for one
    of ours to end instead of drawing more refusals."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(5, clock=clock, probe_interval=1000)
    ours = [await slots.acquire() for _ in range(2)]
    refused = await slots.acquire()
    slots.server_full(refused)
    state = slots.state()
    assert (3, 2, 2, 0) == (state.external, state.effective_capacity, state.in_use, state.available)
    got: list[float] = []

    async def order() -> None:
        await slots.acquire()
        got.append(_now(clock))

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(order)
            await clock.sleep(5)
            ours[0].release()
    assert [5.0] == got


async def test_a_guarded_reprobe_lets_one_order_through_per_interval() -> None:
    """While orders wait on external activations, one more may leave every probe interval;
    a refused probe is learned again."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(3, clock=clock, probe_interval=10)
    slots.server_full()  # nothing held here: all three are elsewhere
    got: list[float] = []

    async def order() -> None:
        token = await slots.acquire()
        got.append(_now(clock))
        if len(got) == 2:
            slots.server_full(token)  # the second probe is refused

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(order)
    # probes at 10 and 20; the refusal at 20 restarts the interval: 30 again.
    assert [10.0, 20.0, 30.0] == got


async def test_learn_server_count_sets_the_external_count() -> None:
    """Knowing how many activations the server holds sets what is counted as external."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(20, clock=clock)
    token = await slots.acquire()
    token.bind("a1", None)
    slots.learn_server_count(15)
    assert (14, 6, 5) == (
        slots.state().external,
        slots.state().effective_capacity,
        slots.state().available,
    )


async def test_interrupt_makes_every_waiter_raise() -> None:
    """An account-wide block makes every queued order raise its error."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(1, clock=clock)
    await slots.acquire()
    raised: list[str] = []

    async def order() -> None:
        try:
            await slots.acquire(timeout=100)
        except Blocked as exc:
            raised.append(str(exc))

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(order)
            await clock.sleep(1)
            slots.interrupt(Blocked("blocked"))
    assert (["blocked"] * 3, 0) == (raised, slots.state().waiters)


async def test_waiting_for_a_slot_logs_how_long_at_info(caplog: pytest.LogCaptureFixture) -> None:
    """An order that waited for a free slot says so, and for how long, at INFO (what
    ``PLATFONE_LOG=info`` shows); one that did not wait logs nothing."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(1, clock=clock, expiry_grace=0.0)
    caplog.set_level(logging.INFO, logger="platfone_async")
    (await slots.acquire()).bind("a1", START + 90)
    async with clock.autojump():
        await slots.acquire()
    records = [r for r in caplog.records if r.name == "platfone_async"]
    assert ["activation slots: waited 90.000 s for a free slot"] == [
        r.getMessage() for r in records
    ]
    assert [logging.INFO] == [r.levelno for r in records]


_step = st.one_of(
    st.tuples(st.just("order"), st.none() | st.integers(0, 40).map(float)),
    st.tuples(st.just("end"), st.integers(0, 30)),
    st.tuples(st.just("wait"), st.integers(1, 40).map(float)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    capacity=st.integers(1, 4),
    steps=st.lists(_step, max_size=30),
    lifetime=st.integers(5, 60).map(float),
)
async def test_any_schedule_never_exceeds_capacity_and_strands_no_slot(
    capacity: int, steps: list[tuple[str, float | int | None]], lifetime: float
) -> None:
    """Any mix of orders (with timeouts), endings, expiries and cancellations: never more
    than ``capacity`` slots held, and no order waits while a slot is free."""
    clock = VirtualClock(start=START)
    slots = ActivationSlots(capacity, clock=clock, expiry_grace=0.0)
    tokens: list[SlotToken] = []
    scopes: list[anyio.CancelScope] = []
    counter = iter(range(1_000_000))

    def check() -> None:
        state = slots.state()
        held = [t for t in tokens if not t.released and clock.time() < (t.expire_at or 0)]
        assert len(held) <= capacity
        assert len(held) == state.in_use
        if state.waiters:
            assert capacity == len(held), f"a slot was free while {state.waiters} waited"

    async def order(timeout: float | None, scope: anyio.CancelScope) -> None:
        with scope:
            try:
                token = await slots.acquire(timeout=timeout)
            except TimeoutError:
                return
            tokens.append(token)
            token.bind(f"a{next(counter)}", clock.time() + lifetime)

    with anyio.fail_after(REAL_TIMEOUT):
        async with anyio.create_task_group() as tg:
            for kind, arg in steps:
                if kind == "order":
                    scope = anyio.CancelScope()
                    scopes.append(scope)
                    tg.start_soon(order, arg, scope)
                elif kind == "end" and tokens:
                    tokens[int(arg or 0) % len(tokens)].release()
                elif kind == "cancel" and scopes:
                    scopes[int(arg or 0) % len(scopes)].cancel()
                elif kind == "wait":
                    clock.advance(float(arg or 0))
                await _settle()
                check()
            for scope in scopes:
                scope.cancel()
    check()
