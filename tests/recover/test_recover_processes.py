"""Crash recovery with real processes, over one SQLite file and over Redis: a worker
killed with SIGKILL while it holds sessions, SMS delivered afterwards, and another
process's ``recover()`` (or ``recover_orphans=True``) settling exactly what it left.

The emulator is served on a loopback port in this process (real time); every worker is
a process of its own (``tests/fleet/_worker.py``) with a 1 s lease standing for the
30 s one, and numbers may be cancelled 1 s after their order. The killed worker runs on
one event loop and the recovering one on the other (asyncio, trio), swapped between the
two stores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from platfone_async.testing import Fault, Offer, PlatfoneEmulator

from ..fleet._servers import serve
from ..fleet.test_fleet_processes import _results, _worker

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

LEASE = "1"


@pytest.fixture
def emulator() -> Iterator[PlatfoneEmulator]:
    """The emulator on real time, served; no SMS unless the test delivers one."""
    emulator = PlatfoneEmulator(rate_limits=None, sms_policy=None, success_rate_check=False)
    emulator.set_balance(1_000_000)
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=100, cancel_after=1)])
    with serve(emulator):
        yield emulator


def loops(state_url: str) -> tuple[str, str]:
    """(the killed worker's event loop, the recovering one's)."""
    return ("asyncio", "trio") if state_url.startswith("sqlite") else ("trio", "asyncio")


def launch(
    emulator: PlatfoneEmulator, state_url: str, prefix: str, mode: str, loop: str, *extra: str
) -> subprocess.Popen[str]:
    """A worker process on the served emulator (lease 1 s) on event loop ``loop``."""
    url, key = emulator.base_url, emulator.api_key
    options = ("--lease", LEASE, "--event-loop", loop, *extra)
    return _worker(mode, url, key, state_url, prefix, *options)


def held_by(worker: subprocess.Popen[str]) -> list[str]:
    """The ids a ``wait`` worker prints once all its sessions are open."""
    assert worker.stdout is not None
    line = worker.stdout.readline()
    assert line, worker.stderr.read() if worker.stderr else ""
    held: list[str] = json.loads(line)["held"]
    return held


def kill(worker: subprocess.Popen[str]) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.communicate(timeout=10)


def statuses(emulator: PlatfoneEmulator, ids: list[str]) -> Counter[str]:
    return Counter(str(emulator.activation(aid)["activation_status"]) for aid in ids)


def test_recover_settles_exactly_what_a_killed_worker_left(
    emulator: PlatfoneEmulator, state_url: str, prefix: str
) -> None:
    """A live worker's 3 sessions beside a worker holding 6 that is SIGKILLed, the 9
    filling the key's 9 slots; SMS reach 2 of the dead worker's numbers afterwards.
    Another process's recover() returns exactly those 6 with the 2 codes, the emulator
    shows 2 finalized and 4 cancelled, it orders at once afterwards (the dead worker's
    slots are back), and the live sessions, untouched, still get their codes."""
    killed_loop, other_loop = loops(state_url)
    nine = ("--capacity", "9")
    live = launch(emulator, state_url, prefix, "wait", other_loop, "--sessions", "3", *nine)
    worker = launch(emulator, state_url, prefix, "wait", killed_loop, "--sessions", "6", *nine)
    live_ids, held = held_by(live), held_by(worker)
    kill(worker)
    codes = {held[1]: "111111", held[4]: "444444"}
    for activation_id, code in codes.items():
        emulator.deliver_sms(activation_id, code)
    time.sleep(float(LEASE) + 0.3)  # the dead worker's lease lapses
    recoverer = launch(emulator, state_url, prefix, "recover", other_loop, *nine)
    live_codes = {aid: f"{n}{n}{n}{n}" for n, aid in enumerate(live_ids, 1)}
    for activation_id, code in live_codes.items():
        emulator.deliver_sms(activation_id, code)
    (result, lived) = _results([recoverer, live])
    recovered: dict[str, list[Any]] = result["recovered"]
    assert sorted(held) == sorted(recovered)
    assert codes == {aid: code for aid, (_, code) in recovered.items() if code}
    assert Counter({"finalized": 2, "canceled": 4}) == Counter(o for o, _ in recovered.values())
    assert Counter({"finalized": 2, "canceled": 4}) == statuses(emulator, held)
    assert "active" == emulator.activation(result["ordered"])["activation_status"]
    assert {aid: ["finalized", code] for aid, code in live_codes.items()} == lived["outcomes"]


def test_two_survivors_with_recover_orphans_settle_each_orphan_once(
    emulator: PlatfoneEmulator, state_url: str, prefix: str
) -> None:
    """recover_orphans=True on two survivors: the killed worker's 4 numbers are each
    cancelled exactly once (one cancel request each, none refused), and the journal
    ends empty."""
    killed_loop, other_loop = loops(state_url)
    dead = launch(emulator, state_url, prefix, "wait", killed_loop, "--sessions", "4")
    dead_ids = held_by(dead)
    kill(dead)
    survivors = [
        launch(emulator, state_url, prefix, "orphans", loop, "--seconds", "30")
        for loop in (other_loop, killed_loop)
    ]
    results = _results(survivors)
    cancels = Counter(
        r.path.split("/")[-2] for r in emulator.requests if r.route == "cancel_activation"
    )
    refused = [r for r in emulator.requests if r.route == "cancel_activation" and r.status != 200]
    assert [{"journal": "empty"}] * 2 == results
    assert Counter(dict.fromkeys(dead_ids, 1)) == cancels
    assert [] == refused
    assert Counter({"canceled": 4}) == statuses(emulator, dead_ids)


def test_recover_cancels_the_number_of_a_worker_killed_before_its_order_was_answered(
    emulator: PlatfoneEmulator, state_url: str, prefix: str
) -> None:
    """A worker's order is placed but its answer held back 8 s; the worker is SIGKILLed
    while waiting for it (the answer still unsent), so no journal names the number. A
    live worker orders a number of the same offer meanwhile. Another process's recover()
    finds the dead order's number through its flight, cancels it (1 s after the order,
    as the offer allows), and leaves the live worker's number alone: it gets its code."""
    killed_loop, other_loop = loops(state_url)
    emulator.inject_fault("create_activation", Fault(answer_delay=8))
    doomed = launch(emulator, state_url, prefix, "order", killed_loop)
    deadline = time.monotonic() + 20
    while not emulator.activations():  # placed; its answer is held back
        assert time.monotonic() < deadline, "the order never reached the emulator"
        time.sleep(0.05)
    (orphan,) = [str(a["activation_id"]) for a in emulator.activations()]
    live = launch(emulator, state_url, prefix, "wait", other_loop, "--sessions", "1")
    (kept,) = held_by(live)
    (held_back, _) = [r for r in emulator.requests if r.route == "create_activation"]
    assert held_back.status is None  # its answer is not sent yet
    kill(doomed)
    time.sleep(float(LEASE) + 0.3)  # the dead worker's lease lapses
    recoverer = launch(emulator, state_url, prefix, "recover", killed_loop)
    (result,) = _results([recoverer])
    emulator.deliver_sms(kept, "777777")
    (lived,) = _results([live])
    assert {orphan: ["canceled", None]} == result["recovered"]
    assert Counter({"canceled": 1}) == statuses(emulator, [orphan])
    assert {kept: ["finalized", "777777"]} == lived["outcomes"]
