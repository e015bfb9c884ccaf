"""Watching an activation: ``watch`` (an async iterator of states) and ``wait_for_sms``.

A watcher is one coroutine that polls ``get_activation`` (through the client's limiter)
and sleeps on the client's clock in between: no task, no timer, no thread of its own.
Its polls serve a number already open, so a failing limits store does not stop them
(they go on under in-process limits). Settling (``_settle``) watches with
:func:`poll_until` while it waits to cancel.

Webhooks plug in at :func:`_sleep_until`, the one place a watcher waits: "until the
next poll is due, or until a pushed update for this activation arrives". A
``WebhookHandler`` attached to the client pushes each verified ``activation.updated``
into the client's ``PushHub`` (``webhooks._push``), which wakes the watchers of that
activation at once; a woken watcher polls ``get_activation`` right away, through the
normal client path (the push is a hint, the server the truth: a duplicate, late or
out-of-order delivery can cost a poll but never makes a watcher yield a stale state).
Should the server answer with a state older than the one pushed, it is asked again a
second later (a few times at most). While events keep arriving, polls are
``PUSH_INTERVAL_FACTOR`` times further apart: polling is the fallback.

Waking needs no task either (see ``webhooks._push``): a registered watcher sleeps on the
clock inside its own cancel scope, and a push cancels that scope.
"""

from __future__ import annotations

import logging
import math
import random
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, TextIO, cast

import anyio

from . import _validate as check
from ._clock import Clock
from ._enums import ActivationStatus
from ._errors import (
    AccountBlockedError,
    ActivationEndedError,
    APIConnectionError,
    InvalidParameterError,
    RateLimitBackendError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    WaitTimeoutError,
)
from ._models import Activation
from ._ratelimit import for_held_number

if TYPE_CHECKING:
    from ._client import AsyncPlatfone
    from .webhooks._push import Registration

#: Where the hubs live; loaded by the first ``WebhookHandler`` attached to a client.
_PUSH = "platfone_async.webhooks._push"

__all__ = ["check_interval", "check_timeout", "id_of", "poll_until", "wait_for_sms", "watch"]

logger = logging.getLogger("platfone_async")

#: What ``wait_for_sms(progress=...)`` calls with each state seen.
OnState = Callable[[Activation], object]

#: Each pause between polls is ``interval`` scaled by a random factor in 1 +- JITTER,
#: so that watchers started together do not poll together for ever.
JITTER = 0.05
#: The poll that confirms an expiry is made this long after ``expire_at``.
EXPIRY_CONFIRM_DELAY = 1.0
#: No poll is ever scheduled later than ``expire_at`` plus this.
EXPIRY_GRACE = 5.0
#: After this many failed polls in a row, the failure is logged as a warning.
_WARN_AFTER_FAILURES = 3
#: When a poll answers with a state older than one pushed, the server lags its own
#: webhook: poll again this soon (at most ``_MAX_LAG_POLLS`` times in a row).
PUSH_LAG_DELAY = 1.0
_MAX_LAG_POLLS = 3


def check_interval(interval: object) -> float:
    """``interval`` as a float, or :class:`InvalidParameterError` unless finite and > 0."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise InvalidParameterError("interval", "must be a number of seconds", interval)
    if not math.isfinite(interval) or interval <= 0:
        raise InvalidParameterError("interval", "must be finite and > 0", interval)
    return float(interval)


def check_timeout(timeout: object) -> float | None:
    """``timeout`` as a float (or None), or :class:`InvalidParameterError` unless >= 0."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidParameterError("timeout", "must be None or a number of seconds", timeout)
    if not math.isfinite(timeout) or timeout < 0:
        raise InvalidParameterError("timeout", "must be None or finite and >= 0", timeout)
    return float(timeout)


def id_of(activation: str | Activation) -> str:
    if isinstance(activation, Activation):
        return activation.activation_id
    return check.activation_id(activation)


def is_settled(state: Activation) -> bool:
    """Whether a watch ends at ``state``: its SMS arrived, or it is no longer active."""
    return state.sms_received or not state.is_active


def is_transient(error: Exception) -> bool:
    """Whether trying again later may succeed: a connection error, a timeout, a 5xx, a
    429 (not the account block), an undecodable answer, the limits backend failing."""
    if isinstance(error, RateLimitError):
        return not isinstance(error, AccountBlockedError)
    return isinstance(
        error, (APIConnectionError, ServerError, ResponseDecodeError, RateLimitBackendError)
    )


def _register(
    client: AsyncPlatfone, activation_id: str, registration: Registration | None
) -> Registration | None:
    """Register the watcher once its client has a hub (a handler may attach later)."""
    if registration is not None:
        return registration
    push = sys.modules.get(_PUSH)
    if push is None:  # no handler was ever made: no client has a hub (nor will, unloaded)
        return None
    hub = push.hub_of(client)
    return None if hub is None else hub.register(activation_id)


async def _sleep_until(clock: Clock, deadline: float, registration: Registration | None) -> None:
    """Wait until ``deadline`` (clock seconds), or until an update for this activation
    is pushed (then return at once: the caller polls)."""
    if registration is None:
        await clock.sleep(deadline - clock.time())
    elif registration.pushed:
        await anyio.lowlevel.checkpoint()
    else:
        await registration.waiter.park(clock, deadline - clock.time())


def _poll_interval(interval: float, registration: Registration | None) -> float:
    """``interval``, or longer while webhooks are flowing (polling is the fallback)."""
    if registration is not None and registration.hub.flowing():
        from .webhooks._push import PUSH_INTERVAL_FACTOR

        return interval * PUSH_INTERVAL_FACTOR
    return interval


def _lags_push(state: Activation, registration: Registration | None) -> bool:
    """Whether the server answered with a state older than one already pushed."""
    if registration is None or registration.newest_push is None:
        return False
    return state.updated_at.timestamp() < registration.newest_push


def _next_poll_at(
    now: float,
    interval: float,
    expire_at: float | None,
    not_before: float | None = None,
    *,
    rng: random.Random,
) -> tuple[float, bool] | None:
    """When to poll next and whether that poll confirms the expiry; None: no more polls.

    ``interval`` from ``now`` with a little jitter (or ``not_before``, if later). A
    poll that would fall after ``expire_at`` becomes the confirming poll, made
    ``EXPIRY_CONFIRM_DELAY`` after it - and never later than ``EXPIRY_GRACE`` after it.
    """
    at = now + interval * (1.0 + JITTER * (2.0 * rng.random() - 1.0))
    if not_before is not None:
        at = max(at, not_before)
    if expire_at is None or at <= expire_at:
        return at, False
    at = max(now, expire_at + EXPIRY_CONFIRM_DELAY)
    return (at, True) if at <= expire_at + EXPIRY_GRACE else None


async def watch(
    client: AsyncPlatfone,
    activation: str | Activation,
    *,
    interval: float,
    until: float | None = None,
) -> AsyncGenerator[Activation, None]:
    """Poll the activation and yield its first state, then each state that differs.

    Ends after yielding a settled state (:func:`is_settled`), or after the poll that
    confirms ``expire_at`` has passed (its state is yielded if it differs, even when
    the server still says ``active``). Transient errors (connection, 5xx, 429 other
    than the account block, an undecodable body) are logged and polled through; when
    they last past ``expire_at`` plus the grace, the watch ends quietly - unless an
    undecodable answer carried an SMS code that no decoded state has shown since: then
    that :class:`ResponseDecodeError` (with ``.sms_code``) is raised, so the code the
    server sent is not lost. Any other error is raised. ``until`` (clock seconds): the
    watch also ends quietly then, without a last poll.
    """
    interval = check_interval(interval)
    activation_id = id_of(activation)
    clock = client.clock
    rng = client._rng
    # A given Activation may be stale (e.g. from before a retry): it only tells the
    # expiry in case the first poll fails.
    expire_at = activation.expire_at.timestamp() if isinstance(activation, Activation) else None
    last: Activation | None = None
    failures = 0
    lag_polls = 0
    confirming = False
    registration: Registration | None = None
    # The last undecodable answer that carried an SMS code no decoded state has shown.
    salvaged: ResponseDecodeError | None = None
    try:
        while True:
            registration = _register(client, activation_id, registration)
            if registration is not None:
                registration.pushed = False  # this poll sees what was pushed so far
            started = clock.time()
            not_before: float | None = None
            pause = interval
            try:
                # A number already open: a failing limits store does not stop its watch.
                with for_held_number():
                    state = await client.get_activation(activation_id)
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                _log_failure(activation_id, error, failures)
                if _carries_code(error, activation_id, last):
                    salvaged = cast(ResponseDecodeError, error)
                if isinstance(error, RateLimitError) and error.reset_at is not None:
                    not_before = error.reset_at.timestamp()
            else:
                failures = 0
                salvaged = None  # a decoded state tells the truth about the code
                expire_at = state.expire_at.timestamp()
                if state != last:
                    last = state
                    yield state
                state = last  # an equal new state is dropped: one is kept while asleep
                if is_settled(state):
                    return
                pause = _poll_interval(interval, registration)
                lag_polls = lag_polls + 1 if _lags_push(state, registration) else 0
                if 0 < lag_polls <= _MAX_LAG_POLLS:
                    pause = min(interval, PUSH_LAG_DELAY)
            # The poll confirming the expiry is the last one, whatever it said.
            if confirming or (expire_at is not None and started > expire_at + EXPIRY_CONFIRM_DELAY):
                _log_stop(activation_id, failures)
                if salvaged is not None:
                    raise salvaged
                return
            scheduled = _next_poll_at(clock.time(), pause, expire_at, not_before, rng=rng)
            if scheduled is None:
                _log_stop(activation_id, failures)
                if salvaged is not None:
                    raise salvaged
                return
            at, confirming = scheduled
            ending = until is not None and at >= until
            if ending:
                at, confirming = cast(float, until), False
            registration = _register(client, activation_id, registration)
            if registration is None:  # no webhooks: the plain sleep, one coroutine less
                await clock.sleep(at - clock.time())
            else:
                await _sleep_until(clock, at, registration)
            if registration is not None and registration.pushed:
                confirming = False  # woken early by a push: this poll confirms nothing
            elif ending:
                return
    finally:
        if registration is not None:
            registration.hub.unregister(registration)


async def poll_until(
    client: AsyncPlatfone,
    activation: Activation,
    until: float,
    *,
    interval: float,
    on_state: OnState,
) -> Activation | None:
    """Watch ``activation`` until ``until`` (clock seconds): the first settled state
    (:func:`is_settled`), or None once ``until`` comes. Each state seen is passed to
    ``on_state``. No task of its own, so an interruption lands in the caller's."""
    async with aclosing(watch(client, activation, interval=interval, until=until)) as states:
        async for state in states:
            on_state(state)
            if is_settled(state):
                return state
    return None


def _carries_code(error: Exception, activation_id: str, last: Activation | None) -> bool:
    """Whether ``error`` is an undecodable answer holding an SMS code not seen yet."""
    if not isinstance(error, ResponseDecodeError) or not error.sms_code:
        return False
    if error.activation_id not in (None, activation_id):
        return False
    return last is None or not last.sms_received or last.sms_code != error.sms_code


def _log_stop(activation_id: str, failures: int) -> None:
    level = logging.WARNING if failures else logging.DEBUG
    logger.log(level, "activation %s: expire_at passed, stopped watching", activation_id)


def _log_failure(activation_id: str, error: Exception, failures: int) -> None:
    level = logging.WARNING if failures == _WARN_AFTER_FAILURES else logging.DEBUG
    logger.log(
        level,
        "activation %s: poll failed (%d in a row), trying again: %s: %s",
        activation_id,
        failures,
        type(error).__name__,
        error,
    )


async def _until_sms(
    client: AsyncPlatfone,
    activation: str | Activation,
    interval: float,
    seen: list[Activation],
    on_state: OnState | None = None,
) -> Activation:
    """Watch until an SMS arrives; every state seen is appended to ``seen``."""
    async with aclosing(watch(client, activation, interval=interval)) as states:
        async for state in states:
            seen.append(state)
            if on_state is not None:
                on_state(state)
            if state.sms_received:
                return state
    # A watch ends only once it knows the expiry: from a state seen or the one given.
    last = seen[-1] if seen else cast(Activation, activation)
    raise ActivationEndedError(
        f"activation {last.activation_id} ended without an SMS ({_how_it_ended(last)})",
        activation=last,
    )


def _how_it_ended(state: Activation) -> str:
    if state.is_active:
        return f"expire_at {state.expire_at.isoformat()} passed"
    if state.activation_status == ActivationStatus.EXPIRED:
        return "it expired"
    return f"it was {state.activation_status}"


async def wait_for_sms(
    client: AsyncPlatfone,
    activation: str | Activation,
    *,
    timeout: float | None,
    interval: float,
    progress: bool | TextIO | OnState = False,
) -> Activation:
    """Watch until an SMS arrives and return that state.

    Raises :class:`ActivationEndedError` (with the last state) when the watch ends
    without one, :class:`WaitTimeoutError` when ``timeout`` clock seconds pass first.
    ``progress``: True shows the wait as text on stderr (:class:`TextProgress`), a text
    stream shows it there; a callable is called with each state seen.
    """
    interval = check_interval(interval)
    timeout = check_timeout(timeout)
    id_of(activation)
    if progress is True or hasattr(progress, "write"):
        stream = None if progress is True else cast(TextIO, progress)
        return await _wait_shown(client, activation, timeout, interval, stream)
    if callable(progress):
        return await _wait(client, activation, timeout, interval, progress)
    if cast(object, progress) not in (False, None):
        raise InvalidParameterError(
            "progress", "must be a bool, a text stream or a callable", progress
        )
    return await _wait(client, activation, timeout, interval, None)


async def _wait_shown(
    client: AsyncPlatfone,
    activation: str | Activation,
    timeout: float | None,
    interval: float,
    stream: TextIO | None,
) -> Activation:
    """:func:`_wait` with a :class:`TextProgress` redrawn every second."""
    from ._progress import TextProgress  # loaded by the first wait shown

    clock = client.clock
    display = TextProgress(clock, stream)
    outcome: list[Activation | Exception] = []
    try:
        async with anyio.create_task_group() as tg:

            async def tick() -> None:
                while True:
                    await clock.sleep(1.0)
                    display.tick()

            tg.start_soon(tick)
            try:
                outcome.append(await _wait(client, activation, timeout, interval, display.show))
            except Exception as error:  # re-raised below, outside the task group
                outcome.append(error)
            tg.cancel_scope.cancel()
    finally:
        if not outcome:
            display.stop("interrupted")
    if isinstance(outcome[0], Exception):
        if isinstance(outcome[0], WaitTimeoutError):
            display.stop("no SMS in time")
        else:
            display.stop(type(outcome[0]).__name__)
        raise outcome[0]
    return outcome[0]


async def _wait(
    client: AsyncPlatfone,
    activation: str | Activation,
    timeout: float | None,
    interval: float,
    on_state: OnState | None,
) -> Activation:
    seen: list[Activation] = []
    if timeout is None:
        return await _until_sms(client, activation, interval, seen, on_state)
    clock = client.clock
    outcome: list[Activation | Exception] = []

    # The clock, not the event loop, says when the timeout passes: race a sleep on it.
    async with anyio.create_task_group() as tg:

        async def work() -> None:
            try:
                outcome.append(await _until_sms(client, activation, interval, seen, on_state))
            except Exception as error:  # re-raised below, outside the task group
                outcome.append(error)
            tg.cancel_scope.cancel()

        async def timer() -> None:
            await clock.sleep(timeout)
            tg.cancel_scope.cancel()

        tg.start_soon(work)
        tg.start_soon(timer)
    if not outcome:
        last = seen[-1] if seen else (activation if isinstance(activation, Activation) else None)
        raise WaitTimeoutError(
            f"no SMS for activation {id_of(activation)} within {timeout:g} s", activation=last
        )
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]
