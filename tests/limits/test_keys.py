"""Limits shared per API key: the registry, the account-wide block and the success-rate guard."""

from __future__ import annotations

import gc
import logging
from datetime import datetime, timezone

import anyio
import pytest

from platfone_async._clock import SystemClock
from platfone_async._ratelimit import (
    DOCUMENTED_RATE_LIMITS,
    InMemoryBackend,
    KeyLimits,
    RateLimit,
    get_key_limits,
    key_fingerprint,
)
from platfone_async._ratelimit._state import SuccessRateCheck
from platfone_async._ratelimit._success import DAY, SuccessRateTracker
from platfone_async.testing import VirtualClock

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0
REAL_TIMEOUT = 20
KEY = "sk-live-SECRET-0123456789abcdef"
URL = "https://api.example.test/api/v1"
LIMITS = {"get_balance": RateLimit(2, 60), "get_services": None}


class Blocked(Exception):
    """Stands in for AccountBlockedError."""


class Refused(Exception):
    """Stands in for SuccessRateGuardError."""


# -- the registry ----------------------------------------------------------------------


def test_same_key_url_and_clock_share_one_key_limits() -> None:
    """Two lookups with the same key, base URL and clock get the same object."""
    clock = VirtualClock()
    first = get_key_limits(KEY, URL, LIMITS, clock)
    assert first is get_key_limits(KEY, URL + "/", LIMITS, clock)


def test_different_key_url_clock_or_backend_do_not_share() -> None:
    """Another key, base URL, clock or backend setting is another budget."""
    clock = VirtualClock()
    first = get_key_limits(KEY, URL, LIMITS, clock)
    others = [
        get_key_limits(KEY + "x", URL, LIMITS, clock),
        get_key_limits(KEY, "https://sandbox.example.test/api/v1", LIMITS, clock),
        get_key_limits(KEY, URL, LIMITS, VirtualClock()),
        get_key_limits(KEY, URL, LIMITS, clock, backend=InMemoryBackend(margin=0.5)),
    ]
    assert [False, False, False, False] == [other is first for other in others]


def test_in_memory_backends_with_one_margin_are_one_read_only_key() -> None:
    """Backends are registry keys: equal and hashing alike by their margin, never changed."""
    assert InMemoryBackend(margin=0.5) == InMemoryBackend(margin=0.5)
    assert hash(InMemoryBackend(margin=0.5)) == hash(InMemoryBackend(margin=0.5))
    assert InMemoryBackend() != InMemoryBackend(margin=0.5)
    assert "InMemoryBackend(margin=0.5)" == repr(InMemoryBackend(margin=0.5))
    with pytest.raises(AttributeError):
        InMemoryBackend().margin = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        InMemoryBackend(0.5)  # type: ignore[call-arg]


def test_every_system_clock_counts_as_one_and_keeps_its_budget() -> None:
    """Clients on the real clock share by key even with distinct SystemClock instances, and
    the budget outlives the clients (a new short-lived client does not start afresh)."""
    key = "sk-system-clock-test"
    first_id = id(get_key_limits(key, URL, LIMITS, SystemClock()))
    gc.collect()
    assert first_id == id(get_key_limits(key, URL, LIMITS, SystemClock()))


def test_a_virtual_clock_key_limits_goes_with_its_last_holder() -> None:
    """Entries for other clocks are held weakly: nothing leaks across tests."""
    clock = VirtualClock()
    get_key_limits(KEY, URL, LIMITS, clock)
    gc.collect()
    fresh = get_key_limits(KEY, URL, {"get_balance": RateLimit(7, 60)}, clock)
    assert 7 == fresh.limiters["get_balance"].limit.calls


def test_first_mapping_wins_and_a_later_one_only_adds(caplog: pytest.LogCaptureFixture) -> None:
    """A later client's differing limit is ignored with a WARNING; new endpoints are added."""
    clock = VirtualClock()
    limits = get_key_limits(KEY, URL, LIMITS, clock)
    later = {"get_balance": RateLimit(500, 60), "get_price": RateLimit(60, 60)}
    with caplog.at_level(logging.WARNING, logger="platfone_async"):
        get_key_limits(KEY, URL, later, clock)
    assert ["get_balance", "get_price"] == sorted(limits.limiters)
    assert 2 == limits.limiters["get_balance"].limit.calls
    assert 1 == len(caplog.records)
    assert KEY not in caplog.text


async def test_the_raw_key_never_shows_in_a_repr_or_state() -> None:
    """KeyLimits names its key by a short digest only."""
    limits = get_key_limits(KEY, URL, LIMITS, VirtualClock())
    shown = repr(limits) + repr(await limits.state()) + repr(limits.limiters)
    assert (KEY not in shown, key_fingerprint(KEY)) == (True, limits.key)


def test_the_documented_table_gets_one_limiter_per_endpoint() -> None:
    """Every endpoint of the documented table gets its own limiter with its own limit."""
    limits = get_key_limits(KEY, URL, DOCUMENTED_RATE_LIMITS, VirtualClock())
    calls = {name: limiter.limit.calls for name, limiter in limits.limiters.items()}
    expected = {name: limit.calls for name, limit in DOCUMENTED_RATE_LIMITS.items() if limit}
    assert expected == calls


# -- acquiring through KeyLimits --------------------------------------------------------


async def test_two_clients_on_one_key_share_one_budget() -> None:
    """Calls through two lookups of one key draw on one bucket: the third waits a period."""
    clock = VirtualClock(start=START)
    a = get_key_limits(KEY, URL, LIMITS, clock, backend=InMemoryBackend(margin=0.0))
    b = get_key_limits(KEY, URL, LIMITS, clock, backend=InMemoryBackend(margin=0.0))
    sends: list[float] = []

    async def call(limits: KeyLimits) -> None:
        async with limits.acquire("get_balance"):
            sends.append(clock.monotonic() - START)

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for limits in (a, b, a):
                tg.start_soon(call, limits)
    assert [0.0, 0.0, 60.0] == sends


async def test_unlimited_and_unknown_endpoints_never_wait() -> None:
    """An endpoint mapped to None, or not in the mapping, has no limiter."""
    limits = get_key_limits(KEY, URL, LIMITS, VirtualClock())
    for _ in range(100):
        async with limits.acquire("get_services"), limits.acquire("not_in_the_table"):
            pass
    assert ["get_balance"] == list(limits.limiters)


async def test_block_endpoint_closes_its_bucket_until_the_reset_time() -> None:
    """A 429's ``x-ratelimit-reset`` (a Unix time or a datetime) holds that endpoint."""
    clock = VirtualClock(start=START)
    limits = KeyLimits(key="k", base_url=URL, rate_limits=LIMITS, clock=clock)
    await limits.block_endpoint("get_balance", datetime.fromtimestamp(START + 42, tz=timezone.utc))
    await limits.block_endpoint("get_services", START + 1000)  # unlimited: nothing to close
    async with clock.autojump():
        async with limits.acquire("get_services"):
            assert 0.0 == clock.monotonic() - START
        async with limits.acquire("get_balance"):
            assert 42.0 == clock.monotonic() - START


async def test_block_account_raises_for_pending_and_new_callers_until_lifted() -> None:
    """An account block makes every queued and new acquire - endpoints and slots - raise at
    once, until its time passes."""
    clock = VirtualClock(start=START)
    limits = KeyLimits(
        key="k", base_url=URL, rate_limits=LIMITS, clock=clock, max_active_activations=1
    )
    await limits.acquire_slot()
    for _ in range(2):
        async with limits.acquire("get_balance"):
            pass
    raised: list[str] = []

    async def call() -> None:
        try:
            async with limits.acquire("get_balance"):
                pass
        except Blocked:
            raised.append("call")

    async def order() -> None:
        try:
            await limits.acquire_slot()
        except Blocked:
            raised.append("order")

    with anyio.fail_after(REAL_TIMEOUT):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(call)
            tg.start_soon(order)
            await clock.sleep(1)
            await limits.block_account(lambda: Blocked("low success rate"), until=START + 3600)
    assert ["call", "order"] == sorted(raised)
    assert 3599.0 == (await limits.state()).account_blocked_for
    with pytest.raises(Blocked):
        limits.acquire("get_services")
    with pytest.raises(Blocked):
        await limits.acquire_slot(timeout=0)
    clock.advance(3600)
    async with limits.acquire("get_services"):
        assert False is limits.account_blocked


async def test_state_reports_every_part() -> None:
    """``KeyLimits.state()`` snapshots the limiters, the slots and the success rate."""
    clock = VirtualClock(start=START)
    limits = KeyLimits(key="k", base_url=URL, rate_limits=LIMITS, clock=clock)
    async with limits.acquire("get_balance"):
        pass
    token = await limits.acquire_slot()
    await limits.bind_slot(token, "a1", START + 1200)
    await limits.record_order("a1")
    state = await limits.state()
    assert (1, 1, 1, 0.0) == (
        state.limiters["get_balance"].cooling,
        state.slots.bound,
        state.success_rate.orders,
        state.account_blocked_for,
    )


# -- the success-rate tracker ------------------------------------------------------------


def _tracker(orders: int, successes: int) -> tuple[VirtualClock, SuccessRateTracker]:
    clock = VirtualClock(start=START)
    tracker = SuccessRateTracker(clock=clock)
    for i in range(orders):
        tracker.record_order(f"a{i}")
    for i in range(successes):
        tracker.record_sms(f"a{i}")
    return clock, tracker


def test_rate_counts_first_sms_per_order() -> None:
    """The rate is activations with an SMS over orders; repeats and unknown ids do not count."""
    _, tracker = _tracker(4, 1)
    tracker.record_sms("a0")
    tracker.record_sms("elsewhere")
    tracker.record_order("a1")
    assert (4, 1, 0.25) == (tracker.orders, tracker.successes, tracker.rate)


def test_rate_is_none_before_any_order() -> None:
    """With no order in the window there is no rate."""
    _, tracker = _tracker(0, 0)
    assert None is tracker.rate


def test_orders_older_than_24_hours_leave_the_window() -> None:
    """Orders, and their SMS, drop out of the rolling 24 h window."""
    clock, tracker = _tracker(10, 1)
    clock.advance(DAY / 2)
    tracker.record_order("late")
    tracker.record_sms("late")
    clock.advance(DAY / 2)
    assert (1, 1, 1.0) == (tracker.orders, tracker.successes, tracker.rate)


def test_check_projects_the_rate_after_the_next_order() -> None:
    """Under the floor once the next order is the 10th or later; not before."""
    assert True is _tracker(8, 0)[1].check().ok  # the 9th order: not counted yet
    assert False is _tracker(9, 0)[1].check().ok  # the 10th: 0 %
    assert True is _tracker(9, 1)[1].check().ok  # 1 of 10: 10 %
    assert False is _tracker(10, 1)[1].check().ok  # 1 of 11: 9.1 %
    check = _tracker(19, 2)[1].check(floor=0.07)
    assert (True, 0.1) == (check.ok, check.projected_rate)


def test_guard_warns_by_default(caplog: pytest.LogCaptureFixture) -> None:
    """``"warn"`` logs a WARNING on ``platfone_async`` and lets the order go."""
    _, tracker = _tracker(20, 1)
    with caplog.at_level(logging.WARNING, logger="platfone_async"):
        result = tracker.guard("warn", error=lambda c: Refused(c.message()))
    assert (False, ["WARNING"]) == (
        result is not None and result.ok,
        [r.levelname for r in caplog.records],
    )
    assert "4.8%" in caplog.text


def test_guard_raises_in_raise_mode_and_does_nothing_when_off() -> None:
    """``"raise"`` raises the caller's error before ordering; ``"off"`` does nothing."""
    _, tracker = _tracker(20, 1)
    seen: list[SuccessRateCheck] = []

    def refuse(check: SuccessRateCheck) -> Exception:
        seen.append(check)
        return Refused(check.message())

    with pytest.raises(Refused, match="under the 10% floor"):
        tracker.guard("raise", error=refuse)
    assert (None, 20) == (tracker.guard("off", error=refuse), seen[0].orders)
    with pytest.raises(ValueError, match="success_rate_guard"):
        tracker.guard("loud", error=refuse)  # type: ignore[arg-type]
