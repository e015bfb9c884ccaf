"""What only a whole process shows: Ctrl-C in a blocking call (exit: test_exit.py).

Each test runs a small script in a fresh interpreter; the Ctrl-C is a real SIGINT sent to
the main thread (from the event loop, the moment the request it must interrupt arrives,
so no test sleeps).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

PRELUDE = """
import json, signal, threading, time
import anyio, httpx
from platfone_async import Platfone
from platfone_async.testing import Offer, PlatfoneEmulator

MAIN = threading.main_thread().ident
events = []

def note(event):
    events.append([event, threading.current_thread().name])

def ctrl_c():
    signal.pthread_kill(MAIN, signal.SIGINT)
"""


def run_script(body: str) -> Any:
    """Run PRELUDE + body in a fresh interpreter; return the JSON on its last line."""
    script = PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == done.returncode, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_ctrl_c_cancels_the_call_on_the_loop_before_returning() -> None:
    """Ctrl-C in a blocking call cancels its coroutine (whose clean-up runs on the loop
    first), raises KeyboardInterrupt in the caller, and leaves the client usable."""
    result = run_script(
        """
        class Transport(httpx.AsyncBaseTransport):
            hang = True

            async def handle_async_request(self, request):
                if not self.hang:
                    return httpx.Response(200, json={"total": 5, "reserved": 1})
                ctrl_c()
                try:
                    await anyio.sleep_forever()
                finally:
                    note("request cancelled")

        transport = Transport()
        client = Platfone(
            "key", base_url="http://platfone.test/api/v1",
            http_client=httpx.AsyncClient(transport=transport), rate_limits=None,
        )
        try:
            client.get_balance()
        except KeyboardInterrupt:
            note("KeyboardInterrupt")
        transport.hang = False
        note(f"available {client.get_balance().available}")
        client.close()
        print(json.dumps(events))
        """
    )
    assert [
        ["request cancelled", "Platfone-loop"],
        ["KeyboardInterrupt", "MainThread"],
        ["available 4", "MainThread"],
    ] == result


def test_ctrl_c_in_wait_for_sms_runs_the_session_clean_up() -> None:
    """Ctrl-C while a session waits for its SMS: the block ends with KeyboardInterrupt and
    the session cancels the activation on the loop before the caller sees it."""
    result = run_script(
        """
        emulator = PlatfoneEmulator(rate_limits=None)
        emulator.catalog.set_offers("telegram", "uk", [Offer(price=50, cancel_after=0)])
        armed = False

        async def app(scope, receive, send):
            # Ctrl-C as soon as wait_for_sms polls.
            if armed and scope["type"] == "http" and scope["method"] == "GET":
                ctrl_c()
            await emulator.app(scope, receive, send)

        class Ahead:
            # The client's clock runs a few seconds ahead, so that the session may cancel
            # at once (it waits a margin past ``cancelable_after`` for clock skew).
            def time(self):
                return time.time() + 5.0

            def monotonic(self):
                return time.monotonic()

            async def sleep(self, seconds):
                await anyio.sleep(max(seconds, 0.0))

        client = Platfone(
            emulator.api_key, base_url=emulator.base_url, rate_limits=None, clock=Ahead(),
            http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app)),
        )
        try:
            with client.activation("telegram", "uk") as session:
                armed = True
                session.wait_for_sms()
        except KeyboardInterrupt:
            note("KeyboardInterrupt")
        armed = False
        state = emulator.activation(session.activation.activation_id)
        print(json.dumps([events, session.outcome.value, state["activation_status"]]))
        client.close()
        """
    )
    assert [[["KeyboardInterrupt", "MainThread"]], "canceled", "canceled"] == result
