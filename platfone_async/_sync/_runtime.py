"""The sync facade's runtime: one event loop thread per client, and the bridge to it.

Hand-written and reviewed like any module; the generated ``_facade`` only subclasses
:class:`Root` and :class:`Twin` and forwards each method in one line (``self._call``,
``self._iterate``, ``self._context``, ...). What lives here:

- :class:`Runtime` - the loop thread of one sync client: asyncio (through ``anyio.run``) in
  a daemon thread, started on first use and stopped by ``close()`` - or at interpreter
  exit, by :mod:`._exit`, for a client never closed;
- :class:`_Task` and :class:`_Step` - how a blocking caller hands work to a task on the
  loop and waits for it, and how Ctrl-C in the caller cancels that work *on the loop*
  (and waits for its clean-up - unless Ctrl-C comes again, or during a context
  manager's exit: that cuts the clean-up short, through its shields);
- the adapters: a coroutine becomes a blocking call, an async iterator an iterator
  (:func:`_drive`), an async context manager a context manager (:class:`_Context`),
  each driven from one task, as async generators and cancel scopes require.

It is one long module on purpose: the task protocol and the adapters built on it share
their invariants (one task per iterator or context manager, steps run in
order, a cancelled step is finished exactly once), and they read best side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

import anyio
import attrs

from . import _exit

__all__ = ["Root", "Runtime", "Twin", "build_later"]
_A = TypeVar("_A")
_P = ParamSpec("_P")
_R = TypeVar("_R")
_W = TypeVar("_W")
_Self = TypeVar("_Self", bound="Root[Any]")

#: How long a thread waiting for the loop sleeps between looks at Ctrl-C (Windows needs it).
_POLL_SECONDS = 0.25


class _Step:
    """One piece of work handed to a task on the loop, and its outcome."""

    __slots__ = ("cancel", "done", "end_on_error", "error", "finished", "fn", "last", "value")

    def __init__(self, fn: Callable[[], Awaitable[Any]], *, last: bool, end_on_error: bool) -> None:
        self.fn = fn
        self.last = last
        self.end_on_error = end_on_error
        self.cancel = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.done = threading.Lock()
        self.done.acquire()

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.done.release()

    def wait(self) -> None:
        # In slices, so that Ctrl-C gets through on every platform.
        while not self.done.acquire(timeout=_POLL_SECONDS):
            pass

    def outcome(self) -> Any:
        error, self.error = self.error, None
        if error is None:
            return self.value
        try:
            raise error
        finally:
            del error  # no cycle through this frame


class _Task:
    """A task on the loop that runs, one after another, the steps one caller hands it.

    An async generator or context manager must be driven from a single task (a cancel
    scope or task group inside it may span a ``yield``), so each iterator and each
    context manager gets a task of its own; a plain call is a task of one step.
    """

    __slots__ = ("_aio_task", "_runtime", "_scope", "_started", "_step", "_wakeup", "ended")

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._started = False
        self._step: _Step | None = None
        self._scope: anyio.CancelScope | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._aio_task: asyncio.Task[None] | None = None
        self.ended = False

    def run(
        self,
        fn: Callable[[], Awaitable[Any]],
        *,
        last: bool = False,
        end_on_error: bool = False,
        cleanup: bool = False,
    ) -> Any:
        """Run ``fn()`` in this task and wait for it; Ctrl-C here cancels it there.

        ``cleanup``: ``fn`` is a clean-up (a context manager's exit), which Ctrl-C cuts
        short at once instead of cancelling politely.
        """
        runtime = self._runtime
        if threading.get_ident() == runtime.thread_id:
            raise RuntimeError(
                f"a {runtime.name} method was called from its own event loop; "
                "await the async client there instead"
            )
        if sys.is_finalizing():  # the loop thread, a daemon, may be frozen already
            raise RuntimeError("the interpreter is shutting down")
        step = _Step(fn, last=last, end_on_error=end_on_error)
        runtime.pending[step] = self
        _exit.note_caller()
        try:
            try:
                runtime.submit(self._resume, step)
                step.wait()
            except BaseException:
                # Ctrl-C (or another exception raised in this thread): cancel the step on
                # the loop and wait until its clean-up has run there (Ctrl-C may land
                # while the step is being handed over: the cancel, queued after it, then
                # finds it not started and ends it). Ctrl-C during a clean-up - a context
                # manager's exit, or this wait - cuts the clean-up short: its task is
                # cancelled through its shields, which a clean-up that must wait (a
                # session waiting for ``cancelable_after``) takes as "give up now" - then
                # this thread waits only for that to be done.
                with contextlib.suppress(RuntimeError):
                    runtime.submit(self._cut_short if cleanup else self._cancel, step)
                    try:
                        if not step.finished:
                            step.wait()
                    except BaseException:
                        runtime.submit(self._cut_short, step)
                        step.wait()
                raise
        finally:
            runtime.pending.pop(step, None)
        return step.outcome()

    def end_with(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``fn()`` as the last step: waiting for it where this thread may wait."""
        if self.ended or not self._started or sys.is_finalizing():
            return
        runtime = self._runtime
        if runtime.closed or threading.get_ident() == runtime.thread_id:
            with contextlib.suppress(RuntimeError):
                runtime.submit(self._resume, _Step(fn, last=True, end_on_error=False))
            return
        self.run(fn, last=True)

    # -- on the loop --

    def _resume(self, step: _Step) -> None:
        self._started = True
        if self.ended or self._busy():
            step.error = RuntimeError(
                "this iterator or context manager has already ended"
                if self.ended
                else "this iterator or context manager is in use in another thread"
            )
            step.finish()
            return
        self._step = step
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is None:
            self._aio_task = self._runtime.spawn(self._main())
        else:
            wakeup.set_result(None)

    def _busy(self) -> bool:
        # Running a step (not waiting for the next one): a second caller must not
        # start another ``_main`` beside it.
        return self._aio_task is not None and self._wakeup is None and not self.ended

    def end_at_exit(self, step: _Step) -> None:
        """Run ``step`` (a last one) if this task is waiting for its next step; if it is
        busy or over, finish ``step`` untouched (the exit cancels a busy step itself)."""
        if self._started and not self.ended and not self._busy():
            self._resume(step)
        else:
            step.finish()

    def cancel_at_exit(self, step: _Step) -> None:
        """Cancel ``step`` (another thread's call, still running at exit): it raises."""
        if not step.finished and step.error is None:
            step.error = RuntimeError(
                f"the interpreter is exiting: this {self._runtime.name} call was cancelled"
            )
        self._cancel(step)

    def _cancel(self, step: _Step) -> None:
        if step.finished:
            return
        step.cancel = True
        if self._step is not step:  # never handed over (_resume runs first if at all)
            step.finish()
        elif self._scope is not None:
            self._scope.cancel()

    def _cut_short(self, step: _Step) -> None:
        # asyncio's own cancellation of the task reaches through anyio's shields.
        if self._step is step and not step.finished and self._aio_task is not None:
            step.cancel = True
            self._aio_task.cancel()
        else:
            self._cancel(step)

    def _current(self) -> _Step:
        assert self._step is not None
        return self._step

    async def _main(self) -> None:
        # One cancel scope for the task's whole life: an async generator or context
        # manager may enter scopes of its own in one step and leave them in a later one,
        # so only a scope around all the steps can cancel any of them.
        step = self._current()
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if step.cancel:
                    scope.cancel()
                while True:
                    try:
                        step.value = await step.fn()
                    except Exception as exc:
                        step.error = exc
                    if step.last or (step.end_on_error and step.error is not None):
                        return
                    self._wakeup = asyncio.get_running_loop().create_future()
                    step.finish()
                    with anyio.CancelScope(shield=True):
                        await self._wakeup
                    step = self._current()
        except asyncio.CancelledError:
            if not step.finished:  # the loop is shutting down under us
                step.error = self._runtime.closed_error()
            raise
        except BaseException as exc:  # KeyboardInterrupt or SystemExit raised by the step
            if not step.finished:
                step.error = exc
        finally:
            self._scope = None
            self.ended = True
            self._runtime.held.pop(self, None)
            step.finish()


class Runtime:
    """The event loop thread of one sync client: started on first use, stopped by close().

    The loop is asyncio's, run by ``anyio.run`` in a daemon thread of our own (a thread
    that blocks nothing at exit: a client never closed is closed by the exit hook of
    :mod:`._exit`, and a loop that hangs even then is left to the interpreter); the
    async object is created on it (so that everything it holds belongs to that loop).
    Calls reach it with ``call_soon_threadsafe`` and come back through a lock: one thread
    hop each way.
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], Any],
        aclose: Callable[[Any], Awaitable[object]] | None,
    ) -> None:
        self.name = name
        self._factory = factory
        self._aclose = aclose
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future[None] | None = None
        self.thread_id: int | None = None
        self.target: Any = None
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()
        #: The steps callers wait for, and the task running each.
        self.pending: dict[_Step, _Task] = {}
        #: The tasks holding an open iterator or context manager: what ends it at exit.
        self.held: dict[_Task, _Held] = {}
        self._keeper = _Task(self)  # the task the async object lives in (see _build)

    def closed_error(self) -> RuntimeError:
        return RuntimeError(f"this {self.name} is closed")

    def open(self) -> Any:
        """The async object, created on the loop (started now if need be)."""
        with self._lock:
            if self.closed:
                raise self.closed_error()
            if self.target is None:
                self._start()
                try:
                    self._keeper = _Task(self)
                    self.target = self._keeper.run(self._build)
                except BaseException:
                    self._stop()
                    raise
            return self.target

    async def _build(self) -> Any:
        """The async object; one that is an async context manager is entered here, in
        the keeper task, which lives until :meth:`close` exits it there (what it runs in
        the background - a client's task group - belongs to that one task)."""
        target = self._factory()
        if isinstance(target, AbstractAsyncContextManager):
            await target.__aenter__()
        return target

    def _start(self) -> None:
        started = threading.Event()
        thread = threading.Thread(
            target=self._serve, args=(started,), name=f"{self.name}-loop", daemon=True
        )
        thread.start()
        started.wait()
        if self._loop is None:
            thread.join()
            raise RuntimeError(f"the event loop thread of this {self.name} did not start")
        self._thread = thread
        _exit.watch(self)

    def _serve(self, started: threading.Event) -> None:
        try:
            anyio.run(self._serve_until_stopped, started, backend="asyncio")
        finally:
            started.set()  # (if the loop never started: _start then says so)

    async def _serve_until_stopped(self, started: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = loop.create_future()
        self._loop, self.thread_id = loop, threading.get_ident()
        started.set()
        await self._stopping
        # On return the loop cancels whatever still runs on it (each waiting caller
        # gets an error), closes the async generators left open, and the thread ends.

    def _stop(self, timeout: float | None = None) -> None:
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(_set_once, stopping)
        if thread is not None:
            thread.join(timeout)
        self._loop = self._stopping = self._thread = None
        self.thread_id = None
        _exit.forget(self)
        for step in list(self.pending):
            if not step.finished:
                step.error = self.closed_error()
                step.finish()

    def submit(self, callback: Callable[[_Step], None], step: _Step) -> None:
        loop = self._loop
        if loop is None or self.closed:
            raise self.closed_error()
        try:
            loop.call_soon_threadsafe(callback, step)
        except RuntimeError:  # the loop has closed
            raise self.closed_error() from None

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self.tasks.discard)
        return task

    def run(self, fn: Callable[[], Awaitable[_R]]) -> _R:
        """Run ``fn()`` on the loop in a task of its own and wait for its outcome."""
        return cast(_R, _Task(self).run(fn, last=True))

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                target, aclose, keeper = self.target, self._aclose, self._keeper
                if target is not None and isinstance(target, AbstractAsyncContextManager):
                    keeper.end_with(lambda: target.__aexit__(None, None, None))
                elif target is not None and aclose is not None:
                    keeper.end_with(lambda: aclose(target))
            finally:
                self.closed = True
                self.target = None
                self._stop()

    def close_within(self, seconds: float) -> None:
        """close(), giving up after about ``seconds`` (at exit, where nothing may hang):
        the HTTP client's close and the loop's end are each waited for that long."""
        if not self._lock.acquire(timeout=seconds):
            return  # another thread is opening or closing this client: leave it be
        try:
            if self.closed:
                return
            target, aclose, keeper = self.target, self._aclose, self._keeper
            if target is not None and self._loop is not None:
                # Exited in the task it was entered in (see _build), else closed in one.
                end: Callable[[], Awaitable[Any]] | None = None
                if isinstance(target, AbstractAsyncContextManager):
                    end = functools.partial(target.__aexit__, None, None, None)
                elif aclose is not None:
                    end, keeper = functools.partial(aclose, target), _Task(self)
                if end is not None:
                    step = _Step(end, last=True, end_on_error=False)
                    with contextlib.suppress(RuntimeError):
                        self.submit(keeper._resume, step)
                        step.done.acquire(timeout=seconds)
            self.closed = True
            self.target = None
            self._stop(seconds)
        finally:
            self._lock.release()

    def abandon(self) -> None:
        # The client was garbage-collected unclosed, in whatever thread (even the loop's
        # own): close it from a helper thread, which may wait where this one may not.
        if not self.closed and self._loop is not None and not sys.is_finalizing():
            threading.Thread(target=self.close, name=f"{self.name}-closer", daemon=True).start()


@attrs.frozen
class _Held:
    """An open iterator or context manager: how to end it at exit, and what to say first."""

    end: Callable[[], Awaitable[object]]
    #: The object a WARNING names before ending it (None: ended without a word).
    value: object = None

    def step(self) -> _Step:
        """The step that ends it (run by :meth:`_Task.end_at_exit`)."""
        return _Step(self.end, last=True, end_on_error=False)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Twin(Generic[_A]):
    """What every generated class shares: the forwarding of each kind of method."""

    _runtime: Runtime

    def __init__(self, client: Root[Any], target: _A) -> None:
        self._client_ref = client  # keeps the client, and so its loop, alive
        self._runtime = client._runtime
        self._async = target

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._async!r}>"

    def _client(self) -> Root[Any]:
        return self._client_ref

    def _target(self) -> _A:
        return self._async

    def _call(
        self,
        method: Callable[Concatenate[_A, _P], Awaitable[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _R:
        target = self._target()
        return self._runtime.run(lambda: method(target, *args, **kwargs))

    def _call_as(
        self,
        wrap: Callable[[Root[Any], _R], _W],
        method: Callable[Concatenate[_A, _P], Awaitable[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _W:
        return wrap(self._client(), self._call(method, *args, **kwargs))

    def _call_sync(
        self, method: Callable[Concatenate[_A, _P], _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        target = self._target()

        async def call() -> _R:
            return method(target, *args, **kwargs)

        return self._runtime.run(call)

    def _call_sync_as(
        self,
        wrap: Callable[[Root[Any], _R], _W],
        method: Callable[Concatenate[_A, _P], _R],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _W:
        return wrap(self._client(), self._call_sync(method, *args, **kwargs))

    def _iterate(
        self,
        method: Callable[Concatenate[_A, _P], AsyncIterator[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Iterator[_R]:
        return _drive(self, lambda target: method(target, *args, **kwargs))

    def _iterate_as(
        self,
        wrap: Callable[[Root[Any], _R], _W],
        method: Callable[Concatenate[_A, _P], AsyncIterator[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Iterator[_W]:
        client = self._client()
        with contextlib.closing(_drive(self, lambda target: method(target, *args, **kwargs))) as it:
            for item in it:
                yield wrap(client, item)

    def _context(
        self,
        method: Callable[Concatenate[_A, _P], AbstractAsyncContextManager[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> AbstractContextManager[_R]:
        target = self._target()
        return _Context(self, lambda: method(target, *args, **kwargs), lambda value: value)

    def _context_as(
        self,
        wrap: Callable[[Root[Any], _R], _W],
        method: Callable[Concatenate[_A, _P], AbstractAsyncContextManager[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> AbstractContextManager[_W]:
        target, client = self._target(), self._client()
        return _Context(
            self, lambda: method(target, *args, **kwargs), lambda value: wrap(client, value)
        )


def build_later(make: Callable[_P, _A], *args: _P.args, **kwargs: _P.kwargs) -> Callable[[], _A]:
    """``make(*args, **kwargs)`` when called, with the arguments as evaluated now (a
    closure, not ``functools.partial``, whose repr would show them - an API key)."""

    def build() -> _A:
        return make(*args, **kwargs)

    return build


class Root(Twin[_A]):
    """The generated client class: owns the runtime and the async client it creates."""

    _parent: Root[Any] | None = None
    _view_target: Any = None

    def __init__(
        self, factory: Callable[[], _A], aclose: Callable[[_A], Awaitable[object]] | None
    ) -> None:
        self._runtime = Runtime(type(self).__name__, factory, aclose)
        weakref.finalize(self, self._runtime.abandon).atexit = False

    @classmethod
    def _view(cls: type[_Self], parent: Root[Any], target: Any) -> _Self:
        """Another client object on ``parent``'s loop, for ``target`` (an async client's
        ``with_options`` copy): it shares the loop, and closing it closes nothing."""
        view = cls.__new__(cls)
        view._runtime = parent._runtime
        view._parent = parent  # keeps the loop's owner alive
        view._view_target = target
        return view

    def __repr__(self) -> str:
        name = type(self).__name__
        target = self._view_target if self._parent is not None else self._runtime.target
        if target is None:
            return f"<{name} ({'closed' if self._runtime.closed else 'not started'})>"
        text, prefix = repr(target), f"<{type(target).__name__}"
        return f"<{name}{text[len(prefix) :]}" if text.startswith(prefix) else f"<{name} {text}>"

    def _client(self) -> Root[Any]:
        return self

    def _target(self) -> _A:
        if self._parent is not None:
            return cast(_A, self._view_target)
        target = self._runtime.target
        return cast(_A, target if target is not None else self._runtime.open())

    def __async_target__(self) -> _A:
        """The async object this sync client drives (started on its loop thread if need
        be): the one hook the rest of the SDK (the webhook handler) uses to reach it."""
        return self._target()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the event loop thread (a generated class documents its own)."""
        self._close()

    def _close(self) -> None:
        if self._parent is None:  # a view's loop belongs to its parent
            self._runtime.close()


def _drive(twin: Twin[_A], make: Callable[[_A], AsyncIterator[_R]]) -> Generator[_R, None, None]:
    """Iterate an async iterator in one task on the loop; leaving early closes it there."""
    target = twin._target()
    task = _Task(twin._runtime)
    iterator: AsyncIterator[_R] | None = None

    async def first() -> _R:
        nonlocal iterator
        iterator = make(target)
        twin._runtime.held[task] = _Held(_closer(iterator))
        return await iterator.__anext__()

    step: Callable[[], Awaitable[_R]] = first
    try:
        while True:
            try:
                item = task.run(step, end_on_error=True)
            except StopAsyncIteration:
                return
            yield item
            assert iterator is not None
            step = iterator.__anext__
    finally:
        if iterator is not None:
            task.end_with(_closer(iterator))


def _closer(iterator: object) -> Callable[[], Awaitable[None]]:
    async def aclose() -> None:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()

    return aclose


def _exiting() -> SystemExit:
    """What ends a block still open at interpreter exit, as ``sys.exit()`` would."""
    return SystemExit("the interpreter is exiting")


class _Context(AbstractContextManager[_W]):
    """A context manager whose async twin is entered and exited in one task on the loop."""

    def __init__(
        self,
        twin: Twin[Any],
        make: Callable[[], AbstractAsyncContextManager[Any]],
        wrap: Callable[[Any], _W],
    ) -> None:
        self._twin = twin  # keeps the client alive while in use
        self._make = make
        self._wrap = wrap
        self._task: _Task | None = None
        self._cm: AbstractAsyncContextManager[Any] | None = None
        self._entered = False

    async def _aenter(self) -> Any:
        cm = self._cm = self._make()
        value = await cm.__aenter__()
        self._entered = True
        assert self._task is not None
        self._twin._runtime.held[self._task] = _Held(
            lambda: cm.__aexit__(SystemExit, _exiting(), None), value
        )
        return value

    def __enter__(self) -> _W:
        if self._task is not None:
            raise RuntimeError("this context manager has been entered already")
        task = self._task = _Task(self._twin._runtime)
        try:
            value = task.run(self._aenter, end_on_error=True)
        except BaseException as exc:
            # Ctrl-C after __aenter__ succeeded: __exit__ will not be called, so exit now.
            if self._entered and not task.ended:
                self._exit(type(exc), exc, exc.__traceback__)
            raise
        return self._wrap(value)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self._exit(exc_type, exc, tb)

    def _exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task, cm = self._task, self._cm
        if task is None or cm is None or task.ended or not self._entered:
            return False
        self._entered = False
        return bool(task.run(lambda: cm.__aexit__(exc_type, exc, tb), last=True, cleanup=True))
