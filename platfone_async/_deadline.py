"""Whole-request deadlines on asyncio, for about a dict entry a request.

On trio an anyio cancel scope is the native, cheap way to bound a request as a whole.
On asyncio it costs ~10 us a call (``asyncio.timeout()`` ~6: a timer made and cancelled
per request), as much as all the rest the SDK does per call. Here one timer serves every
request in flight on a loop: a request enters its task with its due time (a task awaits
one request at a time), and the timer, set for the earliest, cancels the tasks of the
requests overdue when it fires. A request that ends first only leaves the table; the
timer, when it fires for nothing, is set for the earliest request then in flight.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["AsyncioDeadlines", "current_task_function"]


def current_task_function() -> Callable[[], Any] | None:
    """``asyncio.current_task`` on Python 3.11+ (``Task.uncancel``), once a program has
    imported asyncio (none that has not runs it); else None."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or not hasattr(asyncio.Task, "uncancel"):
        return None
    current_task: Callable[[], Any] = asyncio.current_task
    return current_task


class AsyncioDeadlines:
    """The requests in flight on one asyncio loop, and the one timer that bounds them."""

    __slots__ = ("_at", "_due", "_timer", "loop", "time")

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.time: Callable[[], float] = loop.time
        self._due: dict[Any, float] = {}  # task -> when its request is overdue
        self._timer: Any = None
        self._at = math.inf

    def enter(self, task: Any, seconds: float) -> None:
        due = self._due[task] = self.time() + seconds
        if due < self._at:
            self._schedule(due)

    def leave(self, task: Any) -> bool:
        """Take the task's request out; True if the timer had cancelled it (overdue)."""
        return self._due.pop(task, None) is None

    def _schedule(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = at
        self._timer = self.loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer, self._at = None, math.inf
        now = self.time()
        earliest = math.inf
        for task, due in list(self._due.items()):
            if due <= now:
                del self._due[task]
                task.cancel()
            else:
                earliest = min(earliest, due)
        if earliest < math.inf:
            self._schedule(earliest)
