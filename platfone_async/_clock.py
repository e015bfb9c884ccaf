"""Time, behind one small interface so that tests can replace it.

Everything in the SDK that waits (retry backoff, the rate limiters, watchers) or reads
the time (expiry, rolling windows) goes through a :class:`Clock`. The default is the
real one; ``platfone_async.testing.VirtualClock`` lets minute-long behaviour run in
milliseconds on both asyncio and trio.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the SDK needs from a clock."""

    def time(self) -> float:
        """Seconds since the Unix epoch (compared with the API's timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations and windows)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` (zero or less is a plain checkpoint)."""
        ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic` and :func:`anyio.sleep`."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"
