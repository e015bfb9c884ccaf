"""The emulator's default clock: the real time, which ``advance`` can still push on."""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["RealClock", "TimeSource"]


class TimeSource(Protocol):
    """All the emulator needs of a clock; ``sleep`` and ``advance`` are used if present."""

    def time(self) -> float: ...


class RealClock:
    """Wall-clock time plus an offset that :meth:`advance` grows."""

    def __init__(self) -> None:
        self._offset = 0.0

    def __repr__(self) -> str:
        return f"<real clock, offset {self._offset:+.1f}s>"

    def time(self) -> float:
        return time.time() + self._offset

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._offset += seconds
