"""watch_activation and wait_for_sms against the emulator, in virtual time."""

from __future__ import annotations

import itertools
import math
import random

import anyio
import pytest

from platfone_async import (
    AccountBlockedError,
    Activation,
    ActivationEndedError,
    ActivationStatus,
    AsyncPlatfone,
    AuthenticationError,
    InvalidParameterError,
    NotFoundError,
    SmsStatus,
    WaitTimeoutError,
)
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, SmsPolicy, VirtualClock
from tests._support import ACTIVATION, Server, json_response

AID_LENGTH = 24

pytestmark = pytest.mark.emulator(
    success_rate_check=False, offers={("telegram", "uk"): [Offer(100, 0.8, 100)]}
)


def client_of(emulator: PlatfoneEmulator, max_retries: int = 0) -> AsyncPlatfone:
    return emulator.client(rate_limits=None, max_retries=max_retries)


def polls(emulator: PlatfoneEmulator) -> int:
    return emulator.request_count("get_activation")


async def deliver_later(
    emulator: PlatfoneEmulator, clock: VirtualClock, aid: str, delay: float, code: str
) -> None:
    await clock.sleep(delay)
    emulator.deliver_sms(aid, code)


@pytest.mark.anyio
async def test_sms_after_three_minutes_takes_about_eighteen_polls(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """An SMS at 3 min: smsRequested then smsReceived, then the watch stops (~18 polls)."""
    emulator.set_sms_policy(SmsPolicy(delay=180))
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        states = [state async for state in client.watch_activation(activation)]
    assert [SmsStatus.SMS_REQUESTED, SmsStatus.SMS_RECEIVED] == [s.sms_status for s in states]
    assert states[-1].sms_code is not None
    assert 17 <= polls(emulator) <= 21
    assert 180 <= clock.time() - activation.created_at.timestamp() <= 191
    times = [r.time for r in emulator.requests if r.route == "get_activation"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert [] == [gap for gap in gaps if not 9.5 <= gap <= 10.5]


@pytest.mark.anyio
async def test_expiry_without_sms_stops_at_expire_at_with_the_expired_state(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """No SMS: the watch's last state is expired, seen within the grace after expire_at."""
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        states = [state async for state in client.watch_activation(activation.activation_id)]
        count = polls(emulator)
        await clock.sleep(3600)
    expire_at = activation.expire_at.timestamp()
    assert [ActivationStatus.ACTIVE, ActivationStatus.EXPIRED] == [
        s.activation_status for s in states
    ]
    assert expire_at <= emulator.requests[-1].time <= expire_at + 5
    assert count == polls(emulator)


@pytest.mark.anyio
async def test_wait_for_sms_raises_activation_ended_with_the_last_state(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """wait_for_sms on an activation that expires raises ActivationEndedError with it."""
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        with pytest.raises(ActivationEndedError) as info:
            await client.wait_for_sms(activation)
    assert activation.activation_id == info.value.activation.activation_id
    assert ActivationStatus.EXPIRED == info.value.activation.activation_status


@pytest.mark.anyio
async def test_a_server_still_saying_active_after_expire_at_ends_the_watch(
    clock: VirtualClock,
) -> None:
    """The poll confirming expire_at (about 1 s after it) is the last, even if still active."""
    expire_at = int(clock.time()) + 30
    server = Server(default=json_response(200, {**ACTIVATION, "expire_at": expire_at}))
    async with clock.autojump(), server.client(clock, rate_limits=None) as client:
        states = [
            state async for state in client.watch_activation(str(ACTIVATION["activation_id"]))
        ]
        count = len(server.requests)
        await clock.sleep(3600)
    assert 1 == len(states)
    assert states[0].is_active
    assert expire_at + 1 == clock.time() - 3600
    assert count == len(server.requests)


@pytest.mark.anyio
async def test_retry_flow_sees_both_codes_in_order(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """SMS, retry, second SMS: a watch after the retry goes retryRequested -> retryReceived."""
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        aid = activation.activation_id
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliver_later, emulator, clock, aid, 40, "111111")
            first = await client.wait_for_sms(activation)
        await client.retry_activation(aid)
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliver_later, emulator, clock, aid, 25, "222222")
            states = [state async for state in client.watch_activation(first)]
    assert SmsStatus.SMS_RECEIVED == first.sms_status
    assert [SmsStatus.RETRY_REQUESTED, SmsStatus.RETRY_RECEIVED] == [s.sms_status for s in states]
    assert ["111111", "222222"] == [first.sms_code, states[-1].sms_code]


@pytest.mark.anyio
async def test_cancelling_the_watching_task_stops_polling(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """After the watching task is cancelled, no poll is ever made again."""

    async def consume(client: AsyncPlatfone, aid: str) -> None:
        async for _ in client.watch_activation(aid):
            pass

    async with clock.autojump(), client_of(emulator) as client:
        aid = (await client.create_activation("telegram", "uk")).activation_id
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume, client, aid)
            await clock.sleep(35)
            tg.cancel_scope.cancel()
        count = polls(emulator)
        await clock.sleep(3600)
    assert 4 <= count
    assert count == polls(emulator)


@pytest.mark.anyio
async def test_breaking_out_of_the_loop_stops_polling(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A ``break`` leaves nothing that polls, before and after the iterator is closed."""
    async with clock.autojump(), client_of(emulator) as client:
        aid = (await client.create_activation("telegram", "uk")).activation_id
        states = client.watch_activation(aid)
        async for _ in states:
            break
        await clock.sleep(3600)
        count = polls(emulator)
        await states.aclose()
        await clock.sleep(3600)
    assert 1 == count
    assert 1 == polls(emulator)


@pytest.mark.anyio
async def test_transient_faults_do_not_end_the_watch(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """503s, a dropped connection and a malformed body are polled through."""
    emulator.set_sms_policy(SmsPolicy(delay=60))
    async with clock.autojump(), client_of(emulator) as client:
        aid = (await client.create_activation("telegram", "uk")).activation_id
        emulator.inject_fault("get_activation", Fault(status=503), times=2)
        emulator.inject_fault("get_activation", Fault(drop=True))
        emulator.inject_fault("get_activation", Fault(malformed=True))
        states = [state async for state in client.watch_activation(aid)]
    faulted = [r.status for r in emulator.requests if r.fault is not None]
    assert [503, 503, None, 200] == faulted
    assert [SmsStatus.SMS_REQUESTED, SmsStatus.SMS_RECEIVED] == [s.sms_status for s in states]


@pytest.mark.anyio
async def test_a_429_is_waited_out_until_its_reset(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A rate-limit answer does not end the watch; the next poll waits for its reset."""
    emulator.set_sms_policy(SmsPolicy(delay=100))
    async with clock.autojump(), client_of(emulator) as client:
        aid = (await client.create_activation("telegram", "uk")).activation_id
        reset_at = int(clock.time()) + 45
        limited = Fault(status=429, headers={"x-ratelimit-reset": str(reset_at)})
        emulator.inject_fault("get_activation", limited)
        states = [state async for state in client.watch_activation(aid)]
    times = [r.time for r in emulator.requests if r.route == "get_activation"]
    assert [SmsStatus.SMS_REQUESTED, SmsStatus.SMS_RECEIVED] == [s.sms_status for s in states]
    assert reset_at <= times[1] <= reset_at + 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(status=404), NotFoundError),
        (Fault(status=401), AuthenticationError),
        (Fault(status=429, body={"errorName": "LowSuccessRateException"}), AccountBlockedError),
    ],
)
async def test_a_permanent_error_during_the_watch_raises(
    emulator: PlatfoneEmulator, clock: VirtualClock, fault: Fault, error: type[Exception]
) -> None:
    """A permanent error (404, 401, the account block) ends the watch by raising it."""
    async with clock.autojump(), client_of(emulator) as client:
        aid = (await client.create_activation("telegram", "uk")).activation_id
        seen: list[Activation] = []

        async def watch_and_break_the_server() -> None:
            async for state in client.watch_activation(aid):
                seen.append(state)
                emulator.inject_fault("get_activation", fault)

        with pytest.raises(error):
            await watch_and_break_the_server()
    assert 1 == len(seen)
    assert 2 == polls(emulator)


@pytest.mark.anyio
async def test_wait_for_sms_timeout_raises_wait_timeout_error(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """With no SMS within ``timeout`` clock seconds, WaitTimeoutError carries the last state."""
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        start = clock.time()
        with pytest.raises(WaitTimeoutError) as info:
            await client.wait_for_sms(activation, timeout=45)
        waited = clock.time() - start
        count = polls(emulator)
        await clock.sleep(3600)
    assert 45 == waited
    assert isinstance(info.value, TimeoutError)
    assert info.value.activation is not None
    assert SmsStatus.SMS_REQUESTED == info.value.activation.sms_status
    assert count == polls(emulator)


@pytest.mark.anyio
async def test_wait_for_sms_returns_the_state_with_the_sms(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """An SMS before the timeout is returned, and the timer is gone with the wait."""
    emulator.set_sms_policy(SmsPolicy(delay=25))
    async with clock.autojump(), client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        state = await client.wait_for_sms(activation.activation_id, timeout=300)
    assert SmsStatus.SMS_RECEIVED == state.sms_status
    assert 25 <= clock.time() - activation.created_at.timestamp() <= 35


@pytest.mark.anyio
@pytest.mark.parametrize("interval", [0, -1.0, math.nan, math.inf, "10", True])
async def test_a_bad_interval_is_refused_before_any_request(
    emulator: PlatfoneEmulator, interval: object
) -> None:
    """interval must be a finite number of seconds above zero."""
    async with client_of(emulator) as client:
        with pytest.raises(InvalidParameterError):
            async for _ in client.watch_activation("a" * AID_LENGTH, interval=interval):  # type: ignore[arg-type]
                pass
        with pytest.raises(InvalidParameterError):
            await client.wait_for_sms("a" * AID_LENGTH, interval=interval)  # type: ignore[arg-type]
    assert 0 == emulator.request_count()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("activation", "interval"), [("a" * AID_LENGTH, 0), ("a" * AID_LENGTH, "10"), ("", 10.0)]
)
async def test_watch_activation_checks_its_arguments_when_called(
    emulator: PlatfoneEmulator, activation: str, interval: object
) -> None:
    """The call raises, not the first step: an iterator is never made for bad arguments."""
    async with client_of(emulator) as client:
        with pytest.raises(InvalidParameterError):
            client.watch_activation(activation, interval=interval)  # type: ignore[arg-type]
    assert 0 == emulator.request_count()


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [-1, math.nan, math.inf, "5"])
async def test_a_bad_timeout_is_refused_before_any_request(
    emulator: PlatfoneEmulator, timeout: object
) -> None:
    """timeout must be None or a finite number of seconds, zero or more."""
    async with client_of(emulator) as client:
        with pytest.raises(InvalidParameterError):
            await client.wait_for_sms("a" * AID_LENGTH, timeout=timeout)  # type: ignore[arg-type]
    assert 0 == emulator.request_count()


async def _poll_times(seed: int, watchers: int = 40, rounds: int = 3) -> list[list[float]]:
    """Start ``watchers`` watches at one instant (each on its own number, no SMS) and
    return, per watcher, the times of its polls after the first."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(
        clock=clock, success_rate_check=False, rate_limits=None, max_active=watchers
    )
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, watchers)])
    times: dict[str, list[float]] = {}
    async with clock.autojump():
        client = emulator.client(
            rate_limits=None, max_retries=0, max_active_activations=None, rng=random.Random(seed)
        )
        async with client:
            ids = [
                (await client.create_activation("telegram", "uk")).activation_id
                for _ in range(watchers)
            ]

            async def watch(aid: str) -> None:
                async for _ in client.watch_activation(aid):
                    pass

            async with anyio.create_task_group() as tg:
                for aid in ids:
                    tg.start_soon(watch, aid)
                await clock.sleep(rounds * 10 + 5)
                tg.cancel_scope.cancel()
    for record in emulator.requests:
        if record.route == "get_activation":
            times.setdefault(record.path.rsplit("/", 1)[-1], []).append(record.time)
    return [times[aid][1:] for aid in ids]


@pytest.mark.anyio
async def test_many_watchers_started_together_spread_their_polls() -> None:
    """Forty watchers started at one instant do not poll in lockstep: each pause is the
    interval +- 5 % jitter, so their second and later polls spread over most of the
    +- 0.5 s band instead of landing on one instant, and no two watchers share a schedule."""
    per_watcher = await _poll_times(seed=1)
    first_repolls = sorted(polls[0] for polls in per_watcher)
    assert 0.6 <= first_repolls[-1] - first_repolls[0] <= 1.0
    assert len(per_watcher) == len({round(t, 6) for t in first_repolls})
    assert len(per_watcher) == len({tuple(polls) for polls in per_watcher})


def _schedule(per_watcher: list[list[float]]) -> list[float]:
    return sorted(t for polls in per_watcher for t in polls)


@pytest.mark.anyio
async def test_a_seeded_client_polls_on_the_same_schedule_every_run() -> None:
    """The watch jitter is drawn from the client's ``rng``: one seed, one schedule of
    polls (which watcher draws first at one instant is the scheduler's choice)."""
    seven = _schedule(await _poll_times(seed=7, watchers=5))
    assert seven == _schedule(await _poll_times(seed=7, watchers=5))
    assert seven != _schedule(await _poll_times(seed=8, watchers=5))
