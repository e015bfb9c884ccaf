"""Two real SIGINTs to a script blocked in ``session.wait_for_sms`` (sync, asyncio, trio).

The first says at once what the session will do (cancel the number once
``cancelable_after``, two minutes away, allows); the second leaves the number to expire
and returns at once, saying so. The script reports the outcome and the emulator's state.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: A moment as the notices show it: a time today, a date and time on another day (an
#: expiry past midnight).
AT = r"(?:\d\d:\d\d:\d\d|\d{4}-\d\d-\d\d \d\d:\d\d)"

SCRIPT = textwrap.dedent(
    """
    import faulthandler, signal
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # see _finish
    import json, sys, time
    import anyio, httpx
    from platfone_async import AsyncPlatfone, Platfone
    from platfone_async.testing import Offer, PlatfoneEmulator

    mode = sys.argv[1]
    emulator = PlatfoneEmulator(rate_limits=None)
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=50, cancel_after=120)])
    told = False

    async def app(scope, receive, send):
        global told
        if scope["type"] == "http" and scope["method"] == "GET" and not told:
            told = True
            print("polling", flush=True)  # the test's cue for the first Ctrl-C
        await emulator.app(scope, receive, send)

    def http():
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app))

    options = dict(base_url=emulator.base_url, rate_limits=None)
    held = []

    async def main():
        async with AsyncPlatfone(emulator.api_key, http_client=http(), **options) as client:
            async with client.activation("telegram", "uk") as session:
                held.append(session)
                await session.wait_for_sms()

    interrupted = False
    try:
        if mode == "sync":
            with Platfone(emulator.api_key, http_client=http(), **options) as client:
                with client.activation("telegram", "uk") as session:
                    held.append(session)
                    session.wait_for_sms()
        else:
            anyio.run(main, backend=mode)
    except KeyboardInterrupt:
        interrupted = True
    session = held[0]
    state = emulator.activation(session.activation.activation_id)
    print(json.dumps([interrupted, str(session.outcome), state["activation_status"]]))
    """
)


def _finish(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """The rest of the script's output once it exits. A script still running after
    ``timeout`` seconds fails the test with the stacks of all its threads (SIGUSR1
    makes faulthandler write them to stderr), so that a hang says where it hangs."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(0.5)  # the dump is written by the script's own C handler: real time
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the script hung for {timeout} s; its output:\n{out}\nits stderr:\n{err}")


@pytest.mark.parametrize("mode", ["sync", "asyncio", "trio"])
def test_two_sigints_in_a_wait_announce_then_leave_the_number_to_expire(mode: str) -> None:
    """Ctrl-C: "cancelling ... in 1xx s; Ctrl-C again ..." at once; Ctrl-C again: "left
    ... to expire", KeyboardInterrupt in the caller within a second or two, number active."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        assert "polling\n" == process.stdout.readline()
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        notice = process.stderr.readline()
        noticed = time.monotonic() - started
        process.send_signal(signal.SIGINT)
        out, err = _finish(process, timeout=20)
        finished = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert 0 == process.returncode, err
    assert re.fullmatch(
        rf"cancelling \+\d+ at {AT} \S+, in 1[12]\d s; Ctrl-C again to leave it to expire"
        r" - its reserved price is released then\n",
        notice,
    ), notice + err
    assert re.match(rf"left \+\d+ to expire at {AT} \S+; its reserved price", err), err
    assert noticed < 5
    assert finished < 8  # not the two minutes until cancelable_after
    assert [True, "left_to_expire", "active"] == json.loads(out.strip().splitlines()[-1])


CLI_SCRIPT = textwrap.dedent(
    """
    import faulthandler, signal
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # see _finish
    import json, sys
    import anyio, httpx
    from platfone_async.cli import amain
    from platfone_async.testing import Offer, PlatfoneEmulator

    emulator = PlatfoneEmulator(rate_limits=None)
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=50, cancel_after=0)])
    told = False

    async def app(scope, receive, send):
        global told
        if scope["type"] == "http" and scope["method"] == "GET" and not told:
            ids = [a["activation_id"] for a in emulator.activations()]
            if ids and scope["path"].endswith(ids[0]):  # GET /activation/{id}: the wait
                told = True
                print("polling", flush=True)
        await emulator.app(scope, receive, send)

    argv = ["--base-url", emulator.base_url, "--api-key", emulator.api_key,
            "order", "telegram", "uk", "--wait", "--interval", "0.2"]
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    try:
        code = anyio.run(lambda: amain(argv, http_client=http))
    except KeyboardInterrupt:  # what the console script's main() turns into 130
        code = 130
    (state,) = emulator.activations()
    print(json.dumps([code, state["activation_status"], state["phone"]]))
    """
)


def test_one_sigint_to_order_wait_cancels_at_once_when_it_can() -> None:
    """The CLI's entry point in a real process, one SIGINT while it waits, the number
    cancellable: cancelled at once, said so on stderr, 130."""
    process = subprocess.Popen(
        [sys.executable, "-c", CLI_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        while (line := process.stdout.readline()) != "polling\n":  # the order's lines
            assert line, "the script never polled"
        process.send_signal(signal.SIGINT)
        out, err = _finish(process, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    code, status, phone = json.loads(out.strip().splitlines()[-1])
    assert [130, "canceled"] == [code, status], err
    assert f"cancelled +{phone}; its reserved price is released" in err
