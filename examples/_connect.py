"""Where the examples run: the real API when ``PLATFONE_API_KEY`` is set, else the emulator.

The real API spends real money: each example orders at most what it says it orders.
Without a key, the embedded emulator (``platfone_async.testing``) answers in-process -
nothing leaves the machine - and SMS arrive by themselves a few seconds after an order.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio

from platfone_async import AsyncPlatfone, Platfone
from platfone_async.testing import PlatfoneEmulator, SmsPolicy, VirtualClock

__all__ = ["connect", "connect_sync", "emulated"]


def emulated() -> bool:
    """True when no ``PLATFONE_API_KEY`` is set, so the examples use the emulator."""
    return not os.environ.get("PLATFONE_API_KEY")


def _say_where() -> None:
    if emulated():
        print("PLATFONE_API_KEY is not set: running against the embedded emulator (no network)")
    else:
        print("PLATFONE_API_KEY is set: running against the real API (this spends money)")


@contextlib.asynccontextmanager
async def connect(
    emulator: PlatfoneEmulator | None = None, **kwargs: Any
) -> AsyncIterator[AsyncPlatfone]:
    """An ``AsyncPlatfone``: the real API's, or ``emulator``'s on its virtual clock.

    On the emulator, time is virtual (``VirtualClock.autojump``): minutes of waiting for
    an SMS pass in milliseconds.
    """
    _say_where()
    if not emulated():
        async with AsyncPlatfone(**kwargs) as client:
            yield client
        return
    if emulator is None:
        emulator = PlatfoneEmulator(clock=VirtualClock(), sms_policy=SmsPolicy(delay=25))
    assert isinstance(emulator.clock, VirtualClock)
    async with emulator.clock.autojump(), emulator.client(**kwargs) as client:
        yield client


@contextlib.contextmanager
def connect_sync(**kwargs: Any) -> Iterator[Platfone]:
    """A blocking ``Platfone``: the real API's, or an emulator's (on the real clock)."""
    _say_where()
    if not emulated():
        with Platfone(**kwargs) as client:
            yield client
        return
    emulator = PlatfoneEmulator(sms_policy=SmsPolicy(delay=1))
    http = emulator.http_client()
    try:
        with Platfone(
            emulator.api_key, base_url=emulator.base_url, http_client=http, **kwargs
        ) as client:
            yield client
    finally:
        anyio.run(http.aclose)  # an injected client is ours to close
