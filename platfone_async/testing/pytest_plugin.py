"""The pytest plugin of platfone-async: the emulator as fixtures for your own tests.

Registered with the ``pytest11`` entry point (as ``platfone_async``), so installing the
package is enough. It is inactive unless a test asks for one of its fixtures: it has
no hooks, no options and nothing autouse.

- ``platfone_emulator``: a fresh :class:`PlatfoneEmulator` on a :class:`VirtualClock`
  (started at the real time now), so a 20-minute expiry takes no time at all.
- ``platfone_client``: an ``AsyncPlatfone`` wired to it in-process, on the same clock,
  inside ``clock.autojump()``: waits and polls jump ahead instead of sleeping. For async
  tests run by anyio (``@pytest.mark.anyio``).
- ``platfone_sync_client``: a ``Platfone`` (the sync facade) wired to it in-process.
  Its event loop runs in another thread, on the real clock, so keep its waits short
  (``wait_for_sms(interval=0.1)``); the emulator's time moves by ``advance()``.

Disable it with ``-p no:platfone_async``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import anyio
import pytest

if TYPE_CHECKING:
    from platfone_async import AsyncPlatfone, Platfone
    from platfone_async.testing import PlatfoneEmulator

__all__ = ["platfone_client", "platfone_emulator", "platfone_sync_client"]


@pytest.fixture
def platfone_emulator() -> PlatfoneEmulator:
    """A fresh emulator on a virtual clock; its funded key is ``emulator.api_key``."""
    from platfone_async.testing import PlatfoneEmulator, VirtualClock

    return PlatfoneEmulator(clock=VirtualClock(start=time.time()))


@pytest.fixture
async def platfone_client(
    platfone_emulator: PlatfoneEmulator, anyio_backend: object
) -> AsyncIterator[AsyncPlatfone]:
    """An ``AsyncPlatfone`` talking to ``platfone_emulator`` in-process, in virtual time."""
    from platfone_async.testing import VirtualClock

    clock = platfone_emulator.clock
    assert isinstance(clock, VirtualClock)
    async with clock.autojump(), platfone_emulator.client() as client:
        yield client


@pytest.fixture
def platfone_sync_client(platfone_emulator: PlatfoneEmulator) -> Iterator[Platfone]:
    """A ``Platfone`` talking to ``platfone_emulator`` in-process; closed after the test."""
    from platfone_async import Platfone

    http = platfone_emulator.http_client()
    client = Platfone(
        platfone_emulator.api_key, base_url=platfone_emulator.base_url, http_client=http
    )
    try:
        yield client
    finally:
        client.close()
        anyio.run(http.aclose)  # the client's loop is gone; nothing of it is left open
