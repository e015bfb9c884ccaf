"""Ctrl-C as the command counts it, rather than as an exception type that surfaces.

Left to ``asyncio.run``, a second Ctrl-C is a KeyboardInterrupt raised at whatever line
the main thread happens to run: inside a weakref callback Python swallows it ("Exception
ignored in ...") and the Ctrl-C is lost; inside a library's clean-up it can come out as
another exception, and the command then took a number left by Ctrl-C for one that failed
(exit 0, "the code came after an error"). So the console script takes SIGINT through
the event loop (:meth:`Interrupts.taking_sigint`) and counts each one (:meth:`press`):

- the first cancels the command (its :meth:`running` scope), as ``asyncio.run`` does: an
  ``order --wait`` session then settles its number and says how;
- a later one on asyncio cancels the command's task itself, which reaches through the
  session's shielded clean-up, so the number is left at once, saying what it leaves.

Whatever exception the interrupted call then ends with, the count says it was
interrupted: exit 130, and the words say "after the interruption". On trio the
signal stays trio's (a KeyboardInterrupt, delivered at a checkpoint where the code is
protected) and is counted on its way.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

import anyio

__all__ = ["Interrupts"]


class Interrupts:
    """The Ctrl-C presses a command got, and how each reaches it."""

    def __init__(self) -> None:
        #: How many times Ctrl-C was pressed so far.
        self.count = 0
        # The innermost running() scope, its asyncio task (None on trio), and how many
        # times a press cancelled that task (taken back when the scope ends).
        self._scope: anyio.CancelScope | None = None
        self._task: Any = None
        self._cuts = 0

    @property
    def happened(self) -> bool:
        return self.count > 0

    def running(self) -> _Running:
        """The scope the command runs in: the first press cancels it (and it swallows
        that cancellation, and a later press's, as ``with`` blocks do: the code after
        it runs)."""
        return _Running(self)

    def press(self) -> None:
        """One Ctrl-C: counted, then the command cancelled - through its shields after
        the first (on asyncio)."""
        self.count += 1
        if self._scope is None:
            return
        if self.count == 1:
            self._scope.cancel()
        elif self._task is not None:
            self._cuts += 1
            self._task.cancel()

    @contextlib.asynccontextmanager
    async def taking_sigint(self) -> AsyncIterator[None]:
        """SIGINT goes to :meth:`press` (on asyncio, through the event loop), or is
        counted on its way to trio; as it was before, outside the block."""
        if _asyncio_task() is None:
            with self._counting_trio_sigint():
                yield
            return
        if sys.platform == "win32":  # no signal handlers on its event loops: as before
            yield
            return
        prior = signal.getsignal(signal.SIGINT)
        try:
            with anyio.open_signal_receiver(signal.SIGINT) as signals:
                async with anyio.create_task_group() as tg:

                    async def take() -> None:
                        async for _ in signals:
                            self.press()

                    tg.start_soon(take)
                    try:
                        yield
                    finally:
                        tg.cancel_scope.cancel()
        finally:
            if prior is not None:  # (asyncio would leave Python's default handler)
                signal.signal(signal.SIGINT, prior)

    @contextlib.contextmanager
    def _counting_trio_sigint(self) -> Iterator[None]:
        prior = signal.getsignal(signal.SIGINT)
        if not callable(prior):  # not trio's KeyboardInterrupt handling: leave it alone
            yield
            return

        def counting(signum: int, frame: Any) -> Any:
            self.count += 1
            return prior(signum, frame)  # (the frame it judges protection by)

        signal.signal(signal.SIGINT, counting)
        try:
            yield
        finally:
            if signal.getsignal(signal.SIGINT) is counting:
                signal.signal(signal.SIGINT, prior)


class _Running:
    """:meth:`Interrupts.running`: a cancel scope that the presses cancel (the innermost
    one running; the one around it again once it ends)."""

    def __init__(self, interrupts: Interrupts) -> None:
        self._interrupts = interrupts
        self._scope = anyio.CancelScope()
        self._outer: tuple[anyio.CancelScope | None, Any, int] = (None, None, 0)

    def __enter__(self) -> anyio.CancelScope:
        it = self._interrupts
        scope = self._scope.__enter__()
        self._outer = it._scope, it._task, it._cuts
        it._scope, it._task, it._cuts = scope, _asyncio_task(), 0
        if it.count:  # pressed while the command was starting
            scope.cancel()
        return scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        it = self._interrupts
        task, cuts = it._task, it._cuts
        it._scope, it._task, it._cuts = self._outer
        for _ in range(cuts):  # they have done their work: the task goes on normally
            task.uncancel()
        if cuts and isinstance(exc, anyio.get_cancelled_exc_class()):
            self._scope.__exit__(None, None, None)
            return True  # a press's cancellation, not one from outside
        return bool(self._scope.__exit__(exc_type, exc, tb))


def _asyncio_task() -> Any:
    """The running asyncio task; None on trio."""
    asyncio = sys.modules.get("asyncio")  # (a trio program need not have imported it)
    if asyncio is None:
        return None
    try:
        return asyncio.current_task()
    except RuntimeError:  # no asyncio loop running: trio
        return None
