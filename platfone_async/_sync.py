"""The sync facade: ``Platfone``, the blocking twin of ``AsyncPlatfone``.

GENERATED from ``AsyncPlatfone`` - do not edit by hand. Regenerate it with

    python -m platfone_async._codegen

after changing the async client; ``--check`` (run by CI and the tests) fails while
this file is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

import anyio
import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._client import AsyncPlatfone, SuccessRateGuard
from ._clock import Clock
from ._http import RetryPolicy
from ._models import (
    Activation,
    Balance,
    Country,
    CountryPrices,
    Page,
    PriceInfo,
    Report,
    ReportReason,
    ReportResult,
    Service,
    ServicePrices,
)
from ._ratelimit import DOCUMENTED_RATE_LIMITS, KeyLimitsState, RateLimit
from ._session import ActivationSession, SessionOutcome
from ._validate import Evidence

__all__ = ["Platfone", "SyncActivationSession"]

_A = TypeVar("_A")
_P = ParamSpec("_P")
_R = TypeVar("_R")
_W = TypeVar("_W")

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

    __slots__ = ("_runtime", "_scope", "_started", "_step", "_wakeup", "ended")

    def __init__(self, runtime: _Runtime) -> None:
        self._runtime = runtime
        self._started = False
        self._step: _Step | None = None
        self._scope: anyio.CancelScope | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self.ended = False

    def run(
        self, fn: Callable[[], Awaitable[Any]], *, last: bool = False, end_on_error: bool = False
    ) -> Any:
        """Run ``fn()`` in this task and wait for it; Ctrl-C here cancels it there."""
        runtime = self._runtime
        if threading.get_ident() == runtime.thread_id:
            raise RuntimeError(
                f"a {runtime.name} method was called from its own event loop; "
                "await the async client there instead"
            )
        if sys.is_finalizing():  # the loop thread, a daemon, may be frozen already
            raise RuntimeError("the interpreter is shutting down")
        step = _Step(fn, last=last, end_on_error=end_on_error)
        runtime.pending.add(step)
        try:
            runtime.submit(self._resume, step)
            try:
                step.wait()
            except BaseException:
                # Ctrl-C (or another exception raised in this thread): cancel the step on
                # the loop and wait until its clean-up has run there; a second Ctrl-C
                # stops the waiting.
                with contextlib.suppress(RuntimeError):
                    runtime.submit(self._cancel, step)
                    if not step.finished:
                        step.wait()
                raise
        finally:
            runtime.pending.discard(step)
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
        if self.ended:
            step.error = RuntimeError("this iterator or context manager has already ended")
            step.finish()
            return
        self._step = step
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is None:
            self._runtime.spawn(self._main())
        else:
            wakeup.set_result(None)

    def _cancel(self, step: _Step) -> None:
        if not step.finished:
            step.cancel = True
            if self._step is step and self._scope is not None:
                self._scope.cancel()

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
            step.finish()


class _Runtime:
    """The event loop thread of one sync client: started on first use, stopped by close().

    The loop is asyncio's, run by an anyio blocking portal in a daemon thread; the async
    object is created on it (so that everything it holds belongs to that loop). Calls
    reach it with ``call_soon_threadsafe`` and come back through a lock: one thread hop
    each way, cheaper than ``BlockingPortal.call``.
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
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.thread_id: int | None = None
        self.target: Any = None
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.pending: set[_Step] = set()

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
                    self.target = _Task(self).run(self._build, last=True)
                except BaseException:
                    self._stop()
                    raise
            return self.target

    async def _build(self) -> Any:
        return self._factory()

    def _start(self) -> None:
        cm = start_blocking_portal("asyncio")
        portal = cm.__enter__()
        self._portal_cm, self._portal = cm, portal
        self._loop, self.thread_id = portal.call(_adopt_loop_thread, f"{self.name}-loop")

    def _stop(self) -> None:
        cm, self._portal_cm, self._portal = self._portal_cm, None, None
        if cm is not None:
            # Stops the portal; the loop then cancels whatever still runs on it (each
            # waiting caller gets an error) and the thread ends.
            cm.__exit__(None, None, None)
        self._loop = None
        self.thread_id = None
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

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self.tasks.discard)

    def run(self, fn: Callable[[], Awaitable[_R]]) -> _R:
        """Run ``fn()`` on the loop in a task of its own and wait for its outcome."""
        return cast(_R, _Task(self).run(fn, last=True))

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                target, aclose = self.target, self._aclose
                if target is not None and aclose is not None:
                    self.run(lambda: aclose(target))
            finally:
                self.closed = True
                self.target = None
                self._stop()

    def abandon(self) -> None:
        # The client was garbage-collected unclosed, in whatever thread (even the loop's
        # own): close it from a helper thread, which may wait where this one may not.
        if not self.closed and self._loop is not None and not sys.is_finalizing():
            threading.Thread(target=self.close, name=f"{self.name}-closer", daemon=True).start()


def _adopt_loop_thread(name: str) -> tuple[asyncio.AbstractEventLoop, int]:
    threading.current_thread().name = name
    return asyncio.get_running_loop(), threading.get_ident()


class _Twin(Generic[_A]):
    """What every generated class shares: the forwarding of each kind of method."""

    _runtime: _Runtime

    def __init__(self, client: _Root[Any], target: _A) -> None:
        self._client_ref = client  # keeps the client, and so its loop, alive
        self._runtime = client._runtime
        self._async = target

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._async!r}>"

    def _client(self) -> _Root[Any]:
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
        wrap: Callable[[_Root[Any], _R], _W],
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
        wrap: Callable[[_Root[Any], _R], _W],
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
        wrap: Callable[[_Root[Any], _R], _W],
        method: Callable[Concatenate[_A, _P], AbstractAsyncContextManager[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> AbstractContextManager[_W]:
        target, client = self._target(), self._client()
        return _Context(
            self, lambda: method(target, *args, **kwargs), lambda value: wrap(client, value)
        )


class _Root(_Twin[_A]):
    """The generated client class: owns the runtime and the async client it creates."""

    def __init__(
        self, factory: Callable[[], _A], aclose: Callable[[_A], Awaitable[object]] | None
    ) -> None:
        self._runtime = _Runtime(type(self).__name__, factory, aclose)
        weakref.finalize(self, self._runtime.abandon).atexit = False

    def __repr__(self) -> str:
        name, target = type(self).__name__, self._runtime.target
        if target is None:
            return f"<{name} ({'closed' if self._runtime.closed else 'not started'})>"
        text, prefix = repr(target), f"<{type(target).__name__}"
        return f"<{name}{text[len(prefix) :]}" if text.startswith(prefix) else f"<{name} {text}>"

    def _client(self) -> _Root[Any]:
        return self

    def _target(self) -> _A:
        target = self._runtime.target
        return cast(_A, target if target is not None else self._runtime.open())

    def _close(self) -> None:
        self._runtime.close()


def _drive(twin: _Twin[_A], make: Callable[[_A], AsyncIterator[_R]]) -> Generator[_R, None, None]:
    """Iterate an async iterator in one task on the loop; leaving early closes it there."""
    target = twin._target()
    task = _Task(twin._runtime)
    iterator: AsyncIterator[_R] | None = None

    async def first() -> _R:
        nonlocal iterator
        iterator = make(target)
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


class _Context(AbstractContextManager[_W]):
    """A context manager whose async twin is entered and exited in one task on the loop."""

    def __init__(
        self,
        twin: _Twin[Any],
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
        self._cm = self._make()
        value = await self._cm.__aenter__()
        self._entered = True
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
        return bool(task.run(lambda: cm.__aexit__(exc_type, exc, tb), last=True))


# -- generated from the async classes --------------------------------------------------


class SyncActivationSession(_Twin[ActivationSession]):
    """The blocking twin of :class:`ActivationSession`.

    A number held by ``async with client.activation(...) as session:``.

    ``activation`` is the latest state the session knows; every method updates it.
    ``outcome`` is None while the block runs, then a :class:`SessionOutcome`.
    """

    @property
    def activation(self) -> Activation:
        """The latest state the session knows."""
        return self._target().activation

    @property
    def outcome(self) -> SessionOutcome | None:
        """None while the block runs; then how it ended (see :class:`SessionOutcome`)."""
        return self._target().outcome

    def refresh(self) -> Activation:
        """Fetch the activation's state now (``get_activation``) and return it."""
        return self._call(ActivationSession.refresh)

    def wait_for_sms(self, *, timeout: float | None = None, interval: float = 10.0) -> Activation:
        """Wait until an SMS arrives and return that state (as ``client.wait_for_sms``).

        After :meth:`retry`, it waits for the next SMS.

        Raises:
            ActivationEndedError: The activation ended (or ``expire_at`` passed) first.
            WaitTimeoutError: ``timeout`` seconds passed first.
        """
        return self._call(ActivationSession.wait_for_sms, timeout=timeout, interval=interval)

    def watch(self, *, interval: float = 10.0) -> Iterator[Activation]:
        """Yield the state now, then each change, until settled (as ``watch_activation``)."""
        return self._iterate(ActivationSession.watch, interval=interval)

    def retry(self) -> Activation:
        """Ask for another SMS (``retry_activation``), then return the refreshed state.

        Passing the activation (not just its id) lets a retry whose answer was lost be
        recognised by its effect. After such an unsure failure, :class:`PlatfoneError`
        is raised if the activation's state cannot tell whether the retry took effect.
        """
        return self._call(ActivationSession.retry)

    def finalize(self) -> Activation:
        """Finalize the activation (``finalize_activation``): it got what it needed.

        ``activation`` then shows it ``finalized`` (without another request).
        """
        return self._call(ActivationSession.finalize)

    def cancel(self) -> Activation:
        """Cancel the activation (``cancel_activation``); needs ``cancelable_after`` passed.

        ``activation`` then shows it ``canceled`` and the price ``released`` (without
        another request).
        """
        return self._call(ActivationSession.cancel)

    def report(
        self, reason_id: int, *, message: str | None = None, evidence: Evidence | None = None
    ) -> ReportResult:
        """Report a problem with the activation (``create_report``)."""
        return self._call(ActivationSession.report, reason_id, message=message, evidence=evidence)


class Platfone(_Root[AsyncPlatfone]):
    """The blocking twin of :class:`AsyncPlatfone`: same methods, same results.

    Args:
        api_key: Your API key; falls back to the ``PLATFONE_API_KEY`` environment variable.
        sandbox: Use the sandbox environment (its own URL and keys).
        base_url: Another API root (an emulator, a proxy); overrides ``sandbox``.
        timeout: Seconds for each request (an ``httpx.Timeout`` for finer control).
        max_retries: How often an idempotent call is retried after a connection error,
            a timeout or a 500/502/503/504 (an order only when it provably never left);
            shorthand for ``retry_policy=RetryPolicy(max_retries=...)``.
        retry_policy: Every retry knob in one object (:class:`RetryPolicy`): what is
            retried, backoff, a deadline per call, 429 waits, order reconciliation.
            ``RetryPolicy.none()`` switches retries, waits and reconciliation off (for
            tests). With it, leave ``max_retries`` and ``rate_limit_wait`` out.
        rate_limits: Per-method limits enforced client-side; a method mapped to ``None``
            is unlimited, and ``rate_limits=None`` turns client-side limiting off.
        http_client: An ``httpx.AsyncClient`` to send through (transport, proxies, pool,
            hooks). Requests use absolute URLs, so its own ``base_url`` does not matter.
            ``aclose()`` leaves it open: it is yours.
        clock: Where time is read and slept (tests pass a virtual clock).
        max_active_activations: The account's limit of active activations (20 unless
            Platfone raised it for you); orders beyond it wait for a free slot instead of
            drawing a 429. ``None`` turns the client-side count off.
        slot_timeout: How long ``create_activation`` waits for a free slot before raising
            :class:`ActiveActivationsLimitError` (None: as long as it takes).
        success_rate_guard: What to do when the next order would take the 24 h first-SMS
            success rate under ``success_rate_floor`` (after 10 orders): ``"warn"`` logs a
            WARNING, ``"raise"`` raises :class:`SuccessRateGuardError` before ordering,
            ``"off"`` does nothing. Platfone blocks an account for 24 h below 7 %.
        success_rate_floor: The floor the guard watches (default 0.10).
        rate_limit_wait: The longest server-announced wait (a 429's reset, a
            ``Retry-After``; seconds) a call waits out by itself before raising;
            shorthand for ``RetryPolicy(max_server_wait=...)``.

    It runs its own event loop in a daemon thread, started on first use, on which the
    :class:`AsyncPlatfone` and everything it holds live; so it works alike in Jupyter (where
    a loop already runs), in threads and in scripts, and calls from several threads share
    one client. Ctrl-C in a blocking call cancels that call on the loop and waits for its
    clean-up.

    Use it as ``with Platfone() as client:``, or call ``client.close()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        sandbox: bool = False,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        rate_limits: Mapping[str, RateLimit | None] | None = DOCUMENTED_RATE_LIMITS,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        max_active_activations: int | None = 20,
        slot_timeout: float | None = None,
        success_rate_guard: SuccessRateGuard = "warn",
        success_rate_floor: float = 0.1,
        rate_limit_wait: float = 60.0,
    ) -> None:
        super().__init__(
            lambda: AsyncPlatfone(
                api_key,
                sandbox=sandbox,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                retry_policy=retry_policy,
                rate_limits=rate_limits,
                http_client=http_client,
                clock=clock,
                max_active_activations=max_active_activations,
                slot_timeout=slot_timeout,
                success_rate_guard=success_rate_guard,
                success_rate_floor=success_rate_floor,
                rate_limit_wait=rate_limit_wait,
            ),
            AsyncPlatfone.aclose,
        )

    def __enter__(self) -> Platfone:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The API root every request goes to."""
        return self._target().base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The :class:`RetryPolicy` this client follows."""
        return self._target().retry_policy

    def close(self) -> None:
        """Close the HTTP client this object created (an injected one stays open)."""
        self._close()

    def rate_limit_state(self) -> KeyLimitsState:
        """A snapshot of this key's client-side limits, for dashboards.

        Per endpoint: tokens available, in use, cooling down, waiters, how long a server
        429 still closes it; the activation slots (in use, waiting); the 24 h success
        rate; and how long an account block still lasts. Shared by every client in the
        process on the same API key and base URL.
        """
        return self._call_sync(AsyncPlatfone.rate_limit_state)

    def unblock_account(self) -> None:
        """Forget an account block this key learned from a ``LowSuccessRateException``.

        After such a 429, every order on the key raises :class:`AccountBlockedError`
        until the unblock time the server gave. Call this once you have unblocked the
        account in the Platfone dashboard, to order again at once.
        """
        return self._call_sync(AsyncPlatfone.unblock_account)

    def create_activation(
        self,
        service_id: str,
        country_id: str,
        *,
        max_price: int | None = None,
        order_id: str | None = None,
        quality_factor: float | None = None,
        wait_for_slot: bool = True,
    ) -> Activation:
        """Order a number for ``service_id`` in ``country_id`` (``POST /activation``).

        Args:
            service_id: The service to receive an SMS from (``other`` for unlisted ones).
            country_id: The number's country (``_v`` suffix: virtual numbers).
            max_price: The most you will pay, in USD cents (1-10000); above it the server
                answers :class:`MaxPriceExceededError` with a ``suggested_price``.
            order_id: The continuation token of that error, to continue the same order.
            quality_factor: 0 (cheapest) to 100 (best quality); the server's default is 50.
            wait_for_slot: When all ``max_active_activations`` slots are taken, wait for
                one to free up (FIFO) rather than raise :class:`ActiveActivationsLimitError`.

        The price is reserved from the balance at once and billed when the first SMS
        arrives. One call never places two orders:

        - The order is sent again only if it provably never reached the server (the
          connection could not be made, or a 429 refused it).
        - When it may have reached the server - a timeout, a connection dropped before
          the answer, a 5xx, a 2xx body that cannot be read - it is **reconciled**, not
          resent: the activation history is read (at once, then again a few seconds
          later: it may lag) for an activation of this service and country created
          between the moment the request left and the failure (plus a clock-skew
          margin) that no other call was given. Found: it is returned, as if the answer
          had arrived. Not found, after a complete answer (500/502/503) that left
          nothing in the history: the order was not placed, and it is sent once more
          (when ``max_retries`` allows and the status is retryable; otherwise that
          error is raised). Not found after a timeout, a dropped connection or a 504
          (the server may still be placing it), or the history cannot tell (it cannot
          be read, or shows an order this process did not make):
          :class:`OrderOutcomeUnknownError`, with the service, country, time window,
          candidates and last error, and the slot stays taken for it.
        - A request that has left is seen through even if the caller is cancelled
          meanwhile; a call cancelled before its request left takes nothing.

        ``RetryPolicy`` tunes it (``reconcile_delays``, ``clock_skew``); with
        ``reconcile_orders=False`` (as in ``RetryPolicy.none()``) nothing is looked up:
        the error that made the outcome unknown is raised as it is.
        """
        return self._call(
            AsyncPlatfone.create_activation,
            service_id,
            country_id,
            max_price=max_price,
            order_id=order_id,
            quality_factor=quality_factor,
            wait_for_slot=wait_for_slot,
        )

    def get_activation(self, activation_id: str | Activation) -> Activation:
        """The activation's current state (``GET /activation/{id}``); poll it every 10 s."""
        return self._call(AsyncPlatfone.get_activation, activation_id)

    def retry_activation(self, activation_id: str | Activation) -> None:
        """Ask for another SMS to the same number (``PUT /activation/{id}/retry``).

        Allowed while the activation is ``active`` and ``is_retriable``, after an SMS
        arrived; the next SMS overwrites ``sms_code``/``sms_text``. Free of charge.

        Unlike cancel and finalize, a retry is not harmless twice: a second one that
        lands after the next SMS wipes that SMS. So it is never resent blindly. When the
        request may have reached the server and failed (a timeout, a dropped connection,
        a 5xx), the activation is read: a retry that took effect (``retryRequested``, or
        a new code when ``activation_id`` is the :class:`Activation` last seen) counts as
        done; one that surely did not (a complete 5xx answer, the old SMS still shown)
        is sent once more; otherwise the error is raised - the server may still apply
        it, so look at the activation before asking again.
        """
        return self._call(AsyncPlatfone.retry_activation, activation_id)

    def cancel_activation(self, activation_id: str | Activation) -> None:
        """Cancel an activation that has received no SMS (``PUT /activation/{id}/cancel``).

        Allowed once ``cancelable_after`` has passed (never when it is ``None``); the
        reserved price is released.
        """
        return self._call(AsyncPlatfone.cancel_activation, activation_id)

    def finalize_activation(self, activation_id: str | Activation) -> None:
        """Confirm an activation that got its SMS (``PUT /activation/{id}/finalize``).

        Frees its place among the active activations; no SMS arrives afterwards.
        """
        return self._call(AsyncPlatfone.finalize_activation, activation_id)

    def get_activation_history(self, *, page: int = 1, limit: int = 10) -> Page[Activation]:
        """One page of past activations, newest first (``GET /activation/history``).

        Args:
            page: The page number, from 1.
            limit: Items per page, 1-50.
        """
        return self._call(AsyncPlatfone.get_activation_history, page=page, limit=limit)

    def iter_activation_history(self, *, limit: int = 50) -> Iterator[Activation]:
        """Every past activation, page after page (``limit`` per request, 1-50).

        An activation that shifts to the next page while iterating is yielded once.
        """
        return self._iterate(AsyncPlatfone.iter_activation_history, limit=limit)

    def watch_activation(
        self, activation: str | Activation, *, interval: float = 10.0
    ) -> Iterator[Activation]:
        """Yield the activation's state now, then each change, until it is settled.

        Polls ``get_activation`` every ``interval`` seconds (with a little jitter) and
        stops after yielding a state where an SMS has arrived (``smsReceived`` or
        ``retryReceived``), the activation is no longer ``active``, or ``expire_at`` has
        passed (one last poll confirms it). Connection errors, 5xx and rate-limit waits
        do not end the watch; a permanent error (401, 404) is raised. After
        ``retry_activation``, a new watch waits for the next SMS. Breaking out of the
        loop leaves nothing running.
        """
        return self._iterate(AsyncPlatfone.watch_activation, activation, interval=interval)

    def wait_for_sms(
        self, activation: str | Activation, *, timeout: float | None = None, interval: float = 10.0
    ) -> Activation:
        """Wait until an SMS arrives and return the state that carries it.

        Raises:
            ActivationEndedError: The activation expired, was cancelled or finalized
                first (``.activation`` is the last state).
            WaitTimeoutError: ``timeout`` seconds passed first (also a ``TimeoutError``).
        """
        return self._call(
            AsyncPlatfone.wait_for_sms, activation, timeout=timeout, interval=interval
        )

    def activation(
        self,
        service_id: str,
        country_id: str,
        *,
        max_price: int | None = None,
        price_ceiling: int | None = None,
        quality_factor: float | None = None,
        wait_for_slot: bool = True,
    ) -> AbstractContextManager[SyncActivationSession]:
        """Order a number and hold it for the block; settle it whatever ends the block.

        ``async with client.activation("telegram", "uk") as session:`` orders a number
        and yields a session (``.activation`` is the latest state; ``.wait_for_sms()``,
        ``.retry()``, ``.watch()``, ``.finalize()``, ``.cancel()``, ``.report(...)``).
        With ``price_ceiling``, a :class:`MaxPriceExceededError` is answered by ordering
        again at its ``suggested_price`` with its ``order_id``, never above the ceiling.

        On leaving the block - normally, by an exception, by cancellation or by
        KeyboardInterrupt - an activation that got its SMS and was billed is finalized,
        one without an SMS is cancelled (once ``cancelable_after`` allows), and any
        other is left to expire; ``session.outcome`` says which. The clean-up is
        shielded from cancellation and never hides the exception that ended the block.
        """
        return self._context_as(
            SyncActivationSession,
            AsyncPlatfone.activation,
            service_id,
            country_id,
            max_price=max_price,
            price_ceiling=price_ceiling,
            quality_factor=quality_factor,
            wait_for_slot=wait_for_slot,
        )

    def get_price(self, service_id: str, country_id: str) -> PriceInfo:
        """Price range, quality and stock for one service in one country."""
        return self._call(AsyncPlatfone.get_price, service_id, country_id)

    def get_prices_by_country(self, country_id: str | None = None) -> list[CountryPrices]:
        """The price list by country: every country, or only ``country_id``."""
        return self._call(AsyncPlatfone.get_prices_by_country, country_id)

    def get_prices_by_service(self, service_id: str | None = None) -> list[ServicePrices]:
        """The price list by service: every service, or only ``service_id``."""
        return self._call(AsyncPlatfone.get_prices_by_service, service_id)

    def get_countries(self) -> list[Country]:
        """Every country numbers can be ordered in (cached; revalidated by ETag)."""
        return self._call(AsyncPlatfone.get_countries)

    def get_services(self) -> list[Service]:
        """Every service numbers can be ordered for (cached; revalidated by ETag)."""
        return self._call(AsyncPlatfone.get_services)

    def get_popular_services(self) -> list[Service]:
        """The most popular services (cached; revalidated by ETag)."""
        return self._call(AsyncPlatfone.get_popular_services)

    def get_balance(self) -> Balance:
        """The account balance in USD cents (``available`` = total - reserved)."""
        return self._call(AsyncPlatfone.get_balance)

    def get_report_reasons(self, activation_id: str | Activation) -> list[ReportReason]:
        """The reasons a report may be filed for, given the activation's current state."""
        return self._call(AsyncPlatfone.get_report_reasons, activation_id)

    def create_report(
        self,
        activation_id: str | Activation,
        reason_id: int,
        *,
        message: str | None = None,
        evidence: Evidence | None = None,
    ) -> ReportResult:
        """Report a problem with an activation (one report per activation).

        Args:
            activation_id: The activation (or its id).
            reason_id: One of :meth:`get_report_reasons`' ids (>= 1).
            message: Details, at most 1000 characters.
            evidence: A jpg, png, webp, zip, pdf or mp4 file of at most 5 MB: its bytes,
                a path, or a file opened in binary mode.

        Sent as ``multipart/form-data``. A declined report carries a ``decline_id``.
        """
        return self._call(
            AsyncPlatfone.create_report,
            activation_id,
            reason_id,
            message=message,
            evidence=evidence,
        )

    def get_report(self, activation_id: str | Activation) -> Report:
        """The report filed for an activation."""
        return self._call(AsyncPlatfone.get_report, activation_id)

    def get_reports(self, *, page: int = 1, limit: int = 10) -> Page[Report]:
        """One page of the account's reports (``limit`` 1-100)."""
        return self._call(AsyncPlatfone.get_reports, page=page, limit=limit)

    def iter_reports(self, *, limit: int = 100) -> Iterator[Report]:
        """Every report, page after page (``limit`` per request, 1-100)."""
        return self._iterate(AsyncPlatfone.iter_reports, limit=limit)
