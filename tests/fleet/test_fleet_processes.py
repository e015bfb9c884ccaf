"""Real worker processes on one key, through one SQLite file or one Redis: the
guarantees hold fleet-wide.

The emulator is served on a loopback port in this process and records every arrival;
each worker is a separate Python process (``tests/fleet/_worker.py``) with its own
limiter state, sharing only the state file or the Redis server (``state_url``: each
test runs over both).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from platfone_async.testing import Fault, PlatfoneEmulator, SmsPolicy

from ._servers import max_in_window, serve

ROOT = Path(__file__).resolve().parents[2]


def _worker(
    mode: str, base_url: str, api_key: str, state_url: str, prefix: str, *extra: str
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "tests.fleet._worker",
        mode,
        "--base-url",
        base_url,
        "--api-key",
        api_key,
        "--state",
        state_url,
        "--prefix",
        prefix,
        *extra,
    ]
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _results(workers: Sequence[subprocess.Popen[str]], timeout: float = 90) -> list[Any]:
    """What each worker printed last (one JSON object), once all have exited cleanly."""
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert 0 == worker.returncode, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_four_processes_share_one_rolling_window(state_url: str, prefix: str) -> None:
    """4 workers x 25 get_balance calls at 20 per second: the emulator never sees more than
    20 in any rolling second, draws no 429, and the fleet runs at the limit."""
    emulator = PlatfoneEmulator(rate_limits={"get_balance": (20, 1.0)})
    limit, period, workers_n, calls = 20, 1.0, 4, 25
    with serve(emulator) as base_url:
        start_at = str(time.time() + 1.5)  # every worker imported and connected by then
        workers = [
            _worker(
                "balance",
                base_url,
                emulator.api_key,
                state_url,
                prefix,
                "--calls",
                str(calls),
                "--limit",
                str(limit),
                "--period",
                str(period),
                "--start-at",
                start_at,
            )
            for _ in range(workers_n)
        ]
        results = _results(workers)
    arrivals = [r.time for r in emulator.requests if r.route == "get_balance"]
    statuses = [r.status for r in emulator.requests if r.route == "get_balance"]
    assert [[]] * workers_n == [r["errors"] for r in results]
    assert workers_n * calls == len(arrivals)
    assert 0 == statuses.count(429)
    assert limit >= max_in_window(arrivals, period)
    # After the first burst, each further `limit` calls take one period (plus a round
    # trip and the margin): the achieved rate over the rest of the run, against the limit.
    # benchmarks/fleet.py measures it (>= 0.95 on a quiet machine); here the bound only
    # catches a fleet that wastes its budget - one that waited a period too many would
    # reach about half - and holds on a loaded machine too (0.796 seen at load 5 on 2 cores).
    ordered = sorted(arrivals)
    achieved = (len(ordered) - limit) / (ordered[-1] - ordered[0]) * period / limit
    assert achieved >= 0.65, achieved


def test_sixty_sessions_in_four_processes_stay_under_twenty_active(
    state_url: str, prefix: str
) -> None:
    """4 workers x 15 activation() sessions on a 20-active account: the server never
    refuses an order for too many activations, and every number is finalized."""
    emulator = PlatfoneEmulator(rate_limits=None, sms_policy=SmsPolicy(delay=0.3))
    emulator.set_balance(1_000_000)
    with serve(emulator) as base_url:
        start_at = str(time.time() + 1.5)
        workers = [
            _worker(
                "sessions",
                base_url,
                emulator.api_key,
                state_url,
                prefix,
                "--sessions",
                "15",
                "--start-at",
                start_at,
            )
            for _ in range(4)
        ]
        results = _results(workers)
    assert [[]] * 4 == [r["errors"] for r in results]
    assert ["finalized"] * 60 == [o for r in results for o in r["outcomes"]]
    orders = [r for r in emulator.requests if r.route == "create_activation"]
    assert [200] * 60 == [r.status for r in orders]
    assert 60 == emulator.orders_placed()
    assert [] == [a for a in emulator.activations() if a["activation_status"] == "active"]


def test_a_worker_killed_holding_slots_frees_them_when_they_expire(
    state_url: str, prefix: str
) -> None:
    """A worker holding all 5 slots dies by SIGKILL: another waits, sends nothing the
    server would refuse, and orders as soon as the dead worker's activations expire."""
    emulator = PlatfoneEmulator(
        rate_limits=None, sms_policy=SmsPolicy(delay=0.2), max_active=5, activation_lifetime=4
    )
    emulator.set_balance(1_000_000)
    common = ("--capacity", "5", "--slot-grace", "0.3")
    with serve(emulator) as base_url:
        holder = _worker(
            "hold", base_url, emulator.api_key, state_url, prefix, "--sessions", "5", *common
        )
        assert holder.stdout is not None
        held = json.loads(holder.stdout.readline())["held"]
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=10)
        killed_at = time.time()
        (result,) = _results(
            [
                _worker(
                    "sessions",
                    base_url,
                    emulator.api_key,
                    state_url,
                    prefix,
                    "--sessions",
                    "2",
                    *common,
                )
            ]
        )
    assert 5 == len(held)
    assert ([], ["finalized", "finalized"]) == (result["errors"], result["outcomes"])
    orders = [r for r in emulator.requests if r.route == "create_activation"]
    assert [200] * 7 == [r.status for r in orders]
    # The first later order waits for the first of the dead worker's numbers to expire
    # (the 200s above say the server had room for each; a session that ended frees its
    # slot for the next).
    expiries = sorted(emulator.activation(aid)["expire_at"] for aid in held)
    late = sorted(r.time for r in orders[5:])
    assert late[0] >= expiries[0], (late, expiries, killed_at)


@pytest.mark.parametrize("event_loop", ["asyncio", "trio"])
def test_an_order_in_flight_in_one_process_keeps_its_activation_from_another(
    state_url: str, prefix: str, event_loop: str
) -> None:
    """Worker A's order is placed at once but answered 3 s later; worker B's order, half
    a second after, meets a 502 that placed nothing, and B's reconciliation finds A's
    activation in its window while A still waits. B waits until A's order lands (A
    claims its activation first), sees its own order absent and sends it once more:
    each worker gets an activation of its own, and each activation goes to one worker."""
    emulator = PlatfoneEmulator(rate_limits=None, sms_policy=None)
    # The first order (A's) answered late, the next (B's) a 502: in the emulator's queue,
    # not set when the test sees A's arrive (a loaded machine saw it after B's came).
    emulator.inject_fault("create_activation", Fault(answer_delay=3.0))
    emulator.inject_fault("create_activation", Fault(status=502))
    with serve(emulator) as base_url:
        # Both imported and connected by then, even on a loaded machine that compiles the
        # SDK at each start (with less, B's order could arrive first: the roles swap).
        start_at = time.time() + 4.0
        workers = [
            _worker(
                "order",
                base_url,
                emulator.api_key,
                state_url,
                prefix,
                "--start-at",
                str(start_at + delay),
                "--reconcile-delays",
                "0.5,1,1.5",
                "--event-loop",
                event_loop,
            )
            for delay in (0.0, 0.5)
        ]
        a, b = _results(workers)
    posts = [r for r in emulator.requests if r.route == "create_activation"]
    reads = [r for r in emulator.requests if r.route == "get_activation_history"]
    # What this proves needs B to have read the history while A's answer was on its way.
    assert [200, 502, 200] == [r.status for r in posts]
    assert reads[0].time < posts[0].time + 3.0
    placed = [x["activation_id"] for x in emulator.activations()]
    assert [None, None] == [a["error"], b["error"]]
    assert placed == [a["activation_id"], b["activation_id"]]


def test_a_worker_killed_mid_order_holds_up_anothers_reconciliation_only_for_its_lease(
    state_url: str, prefix: str
) -> None:
    """Worker A's order is placed but its answer never comes: A is killed (SIGKILL) while
    it waits. Worker B's order meets a 502 that placed nothing; its reconciliation sees
    A's activation, and A's flight, in its window. Once A's lease (2 s) lapses, B waits
    no longer (with a 600 s lease it does not decide in time), but A's orphaned order
    could own that activation and B's may never have arrived: B's outcome is unknown,
    and the number goes to no one (crash recovery's to take), never to B."""
    emulator = PlatfoneEmulator(rate_limits=None, sms_policy=None)
    emulator.inject_fault("create_activation", Fault(answer_delay=120.0))
    lease = ("--lease", "2")
    with serve(emulator) as base_url:
        start_at = time.time() + 2.0
        a = _worker(
            "order", base_url, emulator.api_key, state_url, prefix,
            "--start-at", str(start_at), *lease,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not emulator.request_count("create_activation"):  # A's order has arrived
            assert time.monotonic() < deadline, "worker A never ordered"
            time.sleep(0.01)
        emulator.inject_fault("create_activation", Fault(status=502))
        b = _worker(
            "order", base_url, emulator.api_key, state_url, prefix,
            "--reconcile-delays", "1,4,8", *lease,
        )  # fmt: skip
        time.sleep(0.5)
        a.send_signal(signal.SIGKILL)
        a.communicate(timeout=30)
        started = time.monotonic()
        (result,) = _results([b])
        took = time.monotonic() - started
    orders = [r for r in emulator.requests if r.route == "create_activation"]
    # The emulator's records: A's order placed the one activation, B's placed nothing.
    assert 1 == len(emulator.activations())
    assert [502] == [r.status for r in orders[1:]], [(r.status, r.time) for r in orders]
    assert None is result["activation_id"]
    assert result["error"].startswith("OrderOutcomeUnknownError"), result["error"]
    assert took < 20


def test_the_sync_client_shares_the_fleet_limits(redis_url: str, prefix: str) -> None:
    """A sync Platfone (its own loop thread) takes a Redis backend like the async client:
    the slot its order holds is the fleet's."""
    from platfone_async import Platfone, RedisBackend

    emulator = PlatfoneEmulator(rate_limits=None)
    backend = RedisBackend.from_url(redis_url, prefix=prefix)
    with serve(emulator) as base_url:
        with Platfone(emulator.api_key, base_url=base_url, limits_backend=backend) as first:
            activation = first.create_activation("telegram", "uk")
        other = RedisBackend.from_url(redis_url, prefix=prefix)
        with Platfone(emulator.api_key, base_url=base_url, limits_backend=other) as second:
            assert 1 == second.rate_limit_state().slots.in_use
            emulator.advance(121)
            second.cancel_activation(activation)
            assert 0 == second.rate_limit_state().slots.in_use
