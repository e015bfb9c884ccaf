"""The API key never shows: not in a log record, an exception, a repr or ``str(client)``."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable

import anyio
import pytest

import platfone_async as pf
from platfone_async.testing import Fault, VirtualClock
from tests._faultkit import API_KEY, new_client, new_emulator

pytestmark = pytest.mark.anyio

WRONG_KEY = "sk-live-WRONG-0000aaaa1111bbbb"


def _texts(error: BaseException) -> list[str]:
    """Everything an exception could show: its message, repr, attributes, traceback."""
    texts = [str(error), repr(error), repr(vars(error))]
    texts += traceback.format_exception(type(error), error, error.__traceback__)
    return texts


async def test_a_full_run_never_shows_the_key(caplog: pytest.LogCaptureFixture) -> None:
    """Orders, sessions, faults, retries, reconciliations and errors with DEBUG logging:
    no log line, exception or repr holds the key."""
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    emulator = new_emulator(clock)
    seen: list[str] = []

    async def attempt(call: Awaitable[object]) -> None:
        try:
            await call
        except pf.PlatfoneError as error:
            seen.extend(_texts(error))

    async with clock.autojump(), anyio.create_task_group() as background:
        async with new_client(emulator, clock, background, keep_going=True) as client:
            seen += [repr(client), str(client), repr(client._http), repr(client.retry_policy)]
            seen.append(repr(await client.rate_limit_state()))
            # faults on every kind of call, each retried or reconciled
            emulator.inject_fault("get_balance", Fault(status=503), times=2)
            emulator.inject_fault("create_activation", Fault(status=502, after_processing=True))
            seen.append(repr(await client.get_balance()))
            seen.append(repr(await client.create_activation("telegram", "uk")))
            emulator.inject_fault("create_activation", Fault(drop=True))
            await attempt(client.create_activation("telegram", "uk"))  # unknown outcome
            emulator.inject_fault("create_activation", Fault(malformed=True))
            seen.append(repr(await client.create_activation("telegram", "uk")))
            emulator.inject_fault("create_activation", Fault(delay=8))  # beyond the timeout
            seen.append(repr(await client.create_activation("telegram", "uk")))
            emulator.inject_fault("get_activation", Fault(drop=True, after_processing=True))
            emulator.inject_fault("cancel_activation", Fault(status=504, after_processing=True))
            reset = str(int(clock.time()) + 5)
            emulator.inject_fault(
                "finalize_activation",
                Fault(
                    status=429,
                    body={"errorName": "TooManyRequestsException"},
                    headers={"x-ratelimit-reset": reset},
                ),
            )
            async with client.activation("telegram", "uk") as session:
                seen.append(repr(session))
                seen.append(repr(await session.wait_for_sms(timeout=60)))
            async with client.activation("google", "uk") as session:
                seen.append(repr(session))
            await attempt(client.get_activation("0123456789abcdef01234567"))  # 404
            await attempt(client.create_activation("telegram", "uk", max_price=1))  # 409
            seen.append(repr(await client.rate_limit_state()))
        async with new_client(emulator, clock, background) as client:
            pass
        wrong = pf.AsyncPlatfone(
            WRONG_KEY, base_url=emulator.base_url, http_client=emulator.http_client(), clock=clock
        )
        async with wrong:
            seen += [repr(wrong), str(wrong)]
            await attempt(wrong.get_balance())  # 401
    try:
        pf.AsyncPlatfone(API_KEY + "\n")
    except pf.InvalidParameterError as error:
        seen.extend(_texts(error))
    sync = pf.Platfone(API_KEY, base_url=emulator.base_url)
    seen += [repr(sync), str(sync)]
    sync.close()

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records]
    assert any("looking for it in the activation history" in line for line in lines)
    assert any("-> 503" in line for line in lines)
    assert len(seen) > 40
    for text in seen + lines:
        assert API_KEY not in text
        assert WRONG_KEY not in text
