"""An owner's lease in a shared store, kept alive by a heartbeat thread.

Each store of a shared backend is one *owner* (a process's clients on one key). Its
orders in flight and its claims on handed-out ids count for the others only while its
lease runs: the store renews it with every flight or claim and, from the first of those
on, every ``lease / 6`` seconds from a daemon thread - so it outlives no process by more
than the lease (30 s by default), whatever its event loop is doing. The thread holds the
store weakly and ends with it (or with :meth:`Heartbeat.stop`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from ._wait import logger

__all__ = ["Heartbeat"]


class Heartbeat:
    """Calls ``beat`` (a bound method: held weakly) every ``interval`` real seconds."""

    __slots__ = ("_beat", "_interval", "_lock", "_stopped", "_thread")

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        self._beat = weakref.WeakMethod(beat)
        self._interval = interval
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start beating (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None or self._stopped.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="platfone-lease", daemon=True)
            self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            beat = self._beat()
            if beat is None:
                return  # the store is gone
            try:
                beat()
            except Exception as exc:  # the next beat tries again
                logger.debug("renewing a lease failed: %s", exc)
            del beat
