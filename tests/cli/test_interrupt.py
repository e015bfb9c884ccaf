"""Ctrl-C counted as pressed (``cli._interrupt``): in-process, ``Interrupts.press()`` at
a chosen moment on the virtual clock, while a call hangs in a transport that turns its
interruption into an ordinary exception - as a library's clean-up may. Whatever that
call ends with, the command exits 130 and says the code came after the interruption."""

from __future__ import annotations

import io
import json
import os
import signal
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from platfone_async.cli import amain
from platfone_async.cli._app import EXIT_INTERRUPTED
from platfone_async.cli._interrupt import Interrupts
from platfone_async.testing import Offer, PlatfoneEmulator, SmsPolicy, VirtualClock


def is_poll(request: httpx.Request) -> bool:
    """A read of one activation: ``GET /activation/{24 hex digits}``."""
    last = request.url.path.rsplit("/", 1)[-1]
    return request.method == "GET" and len(last) == 24 and all(c in HEX for c in last)


def is_finalize(request: httpx.Request) -> bool:
    return request.method == "PUT" and request.url.path.endswith("/finalize")


HEX = frozenset("0123456789abcdef")


class Tearing(httpx.AsyncBaseTransport):
    """The emulator's transport, but the ``nth`` request that ``which`` picks never
    answers, and its interruption comes out as a RuntimeError: the torn-down call's own
    exception, not the cancellation (as a library's clean-up may turn it)."""

    def __init__(
        self, emulator: PlatfoneEmulator, which: Callable[[httpx.Request], bool], nth: int
    ) -> None:
        self._inner = httpx.ASGITransport(app=emulator.app)
        self._which, self._nth, self._seen = which, nth, 0
        self.hanging = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._which(request):
            self._seen += 1
            if self._seen == self._nth:
                self.hanging.set()
                try:
                    await anyio.sleep_forever()
                except BaseException as exc:
                    raise RuntimeError(f"connection torn down ({type(exc).__name__})") from exc
        return await self._inner.handle_async_request(request)


def _emulator(clock: VirtualClock) -> PlatfoneEmulator:
    """The SMS 4 s after an order; a cancel allowed only after 2 minutes."""
    emulator = PlatfoneEmulator(clock=clock, sms_policy=SmsPolicy(delay=4))
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=120)])
    return emulator


async def _order_and_wait(
    emulator: PlatfoneEmulator, clock: VirtualClock, transport: Tearing, interrupts: Interrupts
) -> tuple[int, list[Any], str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--base-url", emulator.base_url, "--api-key", emulator.api_key]
    code = await amain(
        [*argv, "order", "telegram", "uk", "--wait", "--interval", "1", "--json"],
        stdout=out,
        stderr=err,
        interrupts=interrupts,
        http_client=httpx.AsyncClient(transport=transport),
        clock=clock,
        limits_backend=None,
    )
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


@pytest.mark.anyio
async def test_a_ctrl_c_that_the_call_turns_into_an_error_is_still_an_interruption(
    clock: VirtualClock,
) -> None:
    """Ctrl-C while the second poll hangs; that poll ends with a RuntimeError, not the
    cancellation. The session settles (the SMS comes at 4 s: finalized), and the
    command still says the code came after the interruption, and exits 130 - not 0
    as for a code after an error."""
    emulator = _emulator(clock)
    transport = Tearing(emulator, is_poll, nth=2)  # (the first: the wait's first poll)
    interrupts = Interrupts()

    async def press_while_polling() -> None:
        await transport.hanging.wait()
        interrupts.press()

    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(press_while_polling)
        code, states, err = await _order_and_wait(emulator, clock, transport, interrupts)
    (state,) = emulator.activations()
    assert EXIT_INTERRUPTED == code, err
    assert "finalized" == state["activation_status"]
    assert state["sms_code"] == states[-1]["sms_code"]
    assert f"the code came after the interruption; +{state['phone']}: billed" in err
    assert "after an error" not in err


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # (on trio it is a KeyboardInterrupt)
async def test_a_second_ctrl_c_during_the_finalize_leaves_the_billed_number_saying_so(
    clock: VirtualClock,
) -> None:
    """Ctrl-C at 2 s; the SMS at 4 s (billed) while the session waits to cancel; its
    finalize hangs; Ctrl-C again reaches through the settling's shield, and the finalize
    ends with a RuntimeError rather than the cancellation. Still: exit 130, the code
    printed as after the interruption, the number left saying it was billed - never
    "released"."""
    emulator = _emulator(clock)
    transport = Tearing(emulator, is_finalize, nth=1)
    interrupts = Interrupts()

    async def press_twice() -> None:
        await clock.sleep(2)
        interrupts.press()
        await transport.hanging.wait()
        interrupts.press()

    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(press_twice)
        code, states, err = await _order_and_wait(emulator, clock, transport, interrupts)
    (state,) = emulator.activations()
    after = err.split("a code arrived late")[-1]
    assert EXIT_INTERRUPTED == code, err
    assert ("active", "billed") == (state["activation_status"], state["billing_status"])
    assert state["sms_code"] == states[-1]["sms_code"]
    assert f"the code came after the interruption; +{state['phone']}: billed" in err
    assert f"its SMS came and was billed (code {state['sms_code']})" in after
    assert "released" not in after


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # (trio keeps SIGINT: counted only)
async def test_sigint_is_taken_through_the_loop_and_given_back() -> None:
    """A real SIGINT inside ``taking_sigint``: no KeyboardInterrupt anywhere - it is
    counted and cancels the running scope; afterwards SIGINT is handled as before."""
    seen: list[int] = []

    def before(signum: int, frame: Any) -> None:
        seen.append(signum)

    interrupts = Interrupts()
    saved = signal.signal(signal.SIGINT, before)
    try:
        async with interrupts.taking_sigint():
            with interrupts.running() as scope:
                os.kill(os.getpid(), signal.SIGINT)
                await anyio.sleep_forever()  # until the press cancels it
        given_back = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, saved)
    assert scope.cancelled_caught
    assert (1, []) == (interrupts.count, seen)
    assert before is given_back
