"""Whole-request deadlines on asyncio, for about a dict entry a request.

On trio an anyio cancel scope is the native, cheap way to bound a request as a whole.
On asyncio it costs ~10 us a call (``asyncio.timeout()`` ~6: a timer made and cancelled
per request) - against ~15 us for all the rest the SDK does per call. Here one timer
serves every request in flight on a loop: a request is entered with its due time, and
the timer, set for the earliest, cancels the tasks of the requests overdue when it
fires. A request that ends first only leaves the table.
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["AsyncioDeadlines", "running_asyncio_task"]


def running_asyncio_task() -> Any:
    """The running asyncio task, on Python 3.11+ (``Task.uncancel``); else None (trio)."""
    # Not imported by the SDK: a program that never imported asyncio is not running it.
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or not hasattr(asyncio.Task, "uncancel"):
        return None
    try:
        return asyncio.current_task()
    except RuntimeError:  # no asyncio loop: trio
        return None


class Entry:
    """One request in flight: when it is due, its task, and whether the timer fired."""

    __slots__ = ("cancelling", "due", "expired", "task")

    def __init__(self, due: float, task: Any) -> None:
        self.due = due
        self.task = task
        self.cancelling: int = task.cancelling()
        self.expired = False


class AsyncioDeadlines:
    """The requests in flight on one asyncio loop, and the one timer that bounds them."""

    __slots__ = ("_at", "_entries", "_timer", "loop")

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self._entries: dict[int, Entry] = {}
        self._timer: Any = None
        self._at = math.inf

    def enter(self, task: Any, seconds: float) -> Entry:
        entry = Entry(self.loop.time() + seconds, task)
        self._entries[id(entry)] = entry
        if entry.due < self._at:
            self._schedule(entry.due)
        return entry

    def leave(self, entry: Entry) -> None:
        self._entries.pop(id(entry), None)

    def _schedule(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = at
        self._timer = self.loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer, self._at = None, math.inf
        now = self.loop.time()
        earliest = math.inf
        for key, entry in list(self._entries.items()):
            if entry.due <= now:
                del self._entries[key]
                entry.expired = True
                entry.task.cancel()
            else:
                earliest = min(earliest, entry.due)
        if earliest < math.inf:
            self._schedule(earliest)
