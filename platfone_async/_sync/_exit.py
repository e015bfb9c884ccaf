"""A sync client never closed, at interpreter exit: its blocks are left, its loop stopped.

Each client's loop runs in a daemon thread, which alone would never hold the interpreter
up - but the loop may have started non-daemon threads (anyio's worker threads, which the
SQLite and Redis limits use), which the interpreter joins before it runs ``atexit``
callbacks, and which end only when the loop does. So the clients are closed from a hook
of ``threading``'s own (``threading._register_atexit``, as ``concurrent.futures`` stops
its pools): it runs once the main thread's code has ended, before those joins. What it
does (in a thread of its own, once they have ended, when other non-daemon threads that
used a client still run):

1. cancels every call still running from a daemon thread (it raises there), leaves every
   block still open - a session settles its number as after ``sys.exit()``, its WARNING
   saying what it did - and closes every iterator; all at once, for at most
   :data:`LEAVE_SECONDS` (Ctrl-C cuts it short, as it cuts short a session's settling);
2. closes each client (its HTTP client, then its loop), waiting at most
   :data:`CLOSE_SECONDS` for each part.

A loop that does not answer within those bounds is left behind: its thread is a daemon.
The state lives in this module, not on the clients, because the hook has nothing else to
reach them through.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - see below
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ._runtime import Runtime, _Step, _Task

__all__ = ["forget", "note_caller", "watch"]

logger = logging.getLogger("platfone_async")

#: How long the blocks still open at exit get to be left: enough to finalize or cancel a
#: number, not to wait minutes for its ``cancelable_after`` - exit does not hang on that;
#: the session is cut short then and its WARNING says what it left, and until when.
LEAVE_SECONDS = 3.0
#: How long blocks cut short (by Ctrl-C, or after LEAVE_SECONDS) get to say what they left.
CUT_SHORT_SECONDS = 2.0
#: How long each client's HTTP client close, and then its loop's end, are waited for.
CLOSE_SECONDS = 5.0
_POLL_SECONDS = 0.005

# concurrent.futures shuts asyncio's default executor (getaddrinfo runs there) down from a
# hook of its own: imported above, that hook is registered before ours and so runs after
# it (they run in reverse order), once the clients' blocks are left.
_MAIN = threading.main_thread()
_runtimes: set[Runtime] = set()  # started and not stopped
_callers: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # non-daemon, not main
_hook_lock = threading.Lock()
_hooked = False
_interrupted = threading.Event()  # Ctrl-C in the main thread while a closer thread works


def _forget_all() -> None:
    # In a forked child: the loops' threads were not copied, and there is nothing to close.
    _runtimes.clear()
    _callers.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_all)


def watch(runtime: Runtime) -> None:
    """Close ``runtime`` at exit unless it is stopped before (:func:`forget`)."""
    _runtimes.add(runtime)
    if not _hooked:
        _install_hook()


def forget(runtime: Runtime) -> None:
    _runtimes.discard(runtime)


def note_caller() -> None:
    """Remember the current thread, if it is one the interpreter will wait for."""
    thread = threading.current_thread()
    if thread is not _MAIN and not thread.daemon:
        _callers.add(thread)


def _install_hook() -> None:
    global _hooked
    with _hook_lock:
        if _hooked:
            return
        try:
            cast(Any, threading)._register_atexit(_at_exit)
        except RuntimeError:  # the interpreter is shutting down already
            return
        _hooked = True


def _at_exit() -> None:
    me = threading.current_thread()
    callers = [t for t in list(_callers) if t is not me and t.is_alive() and not t.daemon]
    if not callers:
        _close_all()
        return
    # Other threads that used a client still run, and may need it: close once they have
    # ended, from a thread of ours (joining them here would hang on a thread that waits
    # for the main thread to end), and have ``atexit`` - which runs after the interpreter
    # has joined them, and before it stops the daemon threads - wait for that close.
    closer = threading.Thread(
        target=_close_all, args=(callers,), name="platfone-exit-closer", daemon=True
    )
    closer.start()
    atexit.register(_wait_for, closer)


def _wait_for(closer: threading.Thread) -> None:
    try:
        closer.join()
    except KeyboardInterrupt:  # cut short what the closer waits for, and wait for that
        _interrupted.set()
        closer.join(CUT_SHORT_SECONDS + CLOSE_SECONDS)


def _close_all(callers: Iterable[threading.Thread] = ()) -> None:
    """Leave what is still open, then close every client; never raises (from threading's
    hook, an exception would skip the rest of its exit: other hooks, the joins)."""
    try:
        for thread in callers:
            thread.join()
        _leave_everything(list(_runtimes))
    except BaseException:  # Ctrl-C twice: the loops' end below cuts short what is left
        logger.debug("leaving the blocks still open at exit was cut short", exc_info=True)
    for runtime in list(_runtimes):
        try:
            runtime.close_within(CLOSE_SECONDS)
        except BaseException:  # Ctrl-C once more: on to the next
            logger.debug("closing %s at exit was cut short", runtime.name, exc_info=True)


def _leave_everything(runtimes: Iterable[Runtime]) -> None:
    """Cancel the calls still running and leave the blocks still open, all at once."""
    running: list[tuple[_Task, _Step]] = []
    for runtime in runtimes:
        # The blocks first: a thread whose call is cancelled may then try to leave its
        # block itself, and finds it being left already.
        for task, held in list(runtime.held.items()):
            if held.value is not None:
                logger.warning("interpreter exit: leaving %r", held.value)
            step = held.step()
            _submit(runtime, task.end_at_exit, step)
            running.append((task, step))
        for step, task in list(runtime.pending.items()):
            _submit(runtime, task.cancel_at_exit, step)
            running.append((task, step))
    if not running:
        return
    try:
        if _wait(running, LEAVE_SECONDS):
            return
    except KeyboardInterrupt:
        pass
    for task, step in running:  # Ctrl-C, or too long: cut them short through shields
        if not step.finished:
            _submit(task._runtime, task._cut_short, step)
    if not _wait(running, CUT_SHORT_SECONDS):
        logger.warning("stopped waiting at exit for %d block(s) to be left", _count(running))


def _submit(runtime: Runtime, callback: Any, step: _Step) -> None:
    try:
        runtime.submit(callback, step)
    except RuntimeError:  # its loop has ended
        step.finish()


def _wait(running: list[tuple[_Task, _Step]], seconds: float) -> bool:
    """Poll until every step has finished (True) or ``seconds`` have passed (False);
    KeyboardInterrupt when Ctrl-C came (here, or in the main thread waiting for us)."""
    deadline = time.monotonic() + seconds
    while _count(running):
        if time.monotonic() >= deadline:
            return False
        if _interrupted.is_set():
            _interrupted.clear()
            raise KeyboardInterrupt
        time.sleep(_POLL_SECONDS)
    return True


def _count(running: list[tuple[_Task, _Step]]) -> int:
    return sum(not step.finished for _, step in running)
