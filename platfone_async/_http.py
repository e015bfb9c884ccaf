"""The request pipeline every endpoint goes through: build, limit, send, retry, map, decode.

:class:`RetryPolicy` is the one place that says which failures are tried again, how
often, how long to wait in between, and how long a call may take in all. An order (the
one POST that costs money) is never resent here once it may have reached the server:
the pipeline records in a :class:`SendTrace` whether it may have, and the order path
(``_client`` and ``_reconcile``) decides what happens next.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

import anyio
import attrs
import httpx

from ._clock import Clock
from ._convert import decode, decode_page
from ._errors import (
    AccountBlockedError,
    ActiveActivationsLimitError,
    APIConnectionError,
    APITimeoutError,
    InvalidParameterError,
    PlatfoneError,
    RateLimitError,
    ResponseDecodeError,
    make_api_error,
)
from ._models import Page
from ._ratelimit import KeyLimits
from ._version import __version__

__all__ = [
    "MAX_ERROR_BYTES",
    "MAX_RESPONSE_BYTES",
    "USER_AGENT",
    "HTTPPipeline",
    "Reply",
    "RetryPolicy",
    "SendTrace",
]

T = TypeVar("T")

logger = logging.getLogger("platfone_async")

USER_AGENT = f"platfone-async/{__version__} httpx/{httpx.__version__}"

#: The endpoints an account block (the low-success-rate 24 h block) refuses.
_ORDERING = frozenset({"create_activation"})

#: The most of a successful response's body that is read (a price list is a few MB).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: The most of an error response's body that is read (an error object is a few hundred bytes).
MAX_ERROR_BYTES = 1024 * 1024

#: Transport errors raised before the request could leave: nothing reached the server.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


# -- the policy ---------------------------------------------------------------------------


def _count(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(attribute.name, "must be an integer >= 0", value)


def _seconds(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidParameterError(attribute.name, "must be a number of seconds >= 0", value)
    if math.isnan(value):
        raise InvalidParameterError(attribute.name, "must be a number of seconds >= 0", value)


def _fraction(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidParameterError(attribute.name, "must be between 0 and 1", value)


def _deadline(instance: object, attribute: attrs.Attribute[float | None], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidParameterError(attribute.name, "must be None or seconds > 0", value)


def _statuses(value: Iterable[int]) -> frozenset[int]:
    statuses = frozenset(value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise InvalidParameterError("retry_statuses", "must hold HTTP statuses", status)
    return statuses


def _delays(value: Iterable[float]) -> tuple[float, ...]:
    delays = tuple(value)
    if not delays or any(
        isinstance(d, bool) or not isinstance(d, (int, float)) or not d >= 0 for d in delays
    ):
        raise InvalidParameterError(
            "reconcile_delays", "must be one or more numbers of seconds >= 0", delays
        )
    if list(delays) != sorted(delays):
        raise InvalidParameterError("reconcile_delays", "must not decrease", delays)
    return tuple(float(d) for d in delays)


@attrs.frozen
class RetryPolicy:
    """Which failures a call tries again, how often, how long it waits, how long in all.

    **Idempotent calls** (every GET, and the PUTs retry/cancel/finalize) are retried up
    to ``max_retries`` times after a connection error, a timeout (``retry_timeouts``),
    a status in ``retry_statuses`` (500/502/503/504 by default) or a 2xx body that is not
    valid JSON (a truncated answer). The wait before retry ``n`` (0-based) is
    ``min(backoff_max, backoff_base * 2**n)`` scaled by a random factor in
    ``[1 - jitter, 1]``, or the server's ``Retry-After`` when that is longer; a
    ``Retry-After`` beyond ``max_server_wait`` is not waited for - the error is raised.

    **A 429** means the server did not act, so any call, an order too, waits until the
    ``x-ratelimit-reset`` it names and goes again, at most ``max_rate_limit_waits`` times
    and only for a reset within ``max_server_wait`` seconds (the account block and the
    20-active limit are never waited out here).

    **An order** (``create_activation``) is resent only when it provably never reached
    the server: the connection could not be made, or a 429 refused it. When it may have
    reached the server, it is reconciled instead (``reconcile_orders``): the activation
    history is read ``reconcile_delays`` seconds after the failure, looking for an
    activation of that service and country created in the request's time window
    (widened by ``clock_skew`` seconds); see ``AsyncPlatfone.create_activation``.

    ``deadline`` bounds a whole call on the client's clock: no retry, 429 wait or wait
    for a rate-limit token goes past it (a request already sent runs to its
    ``timeout``). None: no bound beyond the counts above.

    ``RetryPolicy.none()`` switches all of it off - one attempt, no waits, no
    reconciliation (an order that may have been placed raises the error that made it
    ambiguous, as it is) - for tests that want each failure to surface as it happens.
    """

    max_retries: int = attrs.field(default=2, validator=_count)
    backoff_base: float = attrs.field(default=0.5, validator=_seconds)
    backoff_max: float = attrs.field(default=8.0, validator=_seconds)
    jitter: float = attrs.field(default=0.5, validator=_fraction)
    retry_statuses: frozenset[int] = attrs.field(
        default=frozenset({500, 502, 503, 504}), converter=_statuses
    )
    retry_timeouts: bool = True
    deadline: float | None = attrs.field(default=None, validator=_deadline)
    max_server_wait: float = attrs.field(default=60.0, validator=_seconds)
    max_rate_limit_waits: int = attrs.field(default=5, validator=_count)
    reconcile_orders: bool = True
    reconcile_delays: tuple[float, ...] = attrs.field(default=(1.0, 4.0, 10.0), converter=_delays)
    clock_skew: float = attrs.field(default=5.0, validator=_seconds)

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries, no waiting out 429s, no reconciliation: every failure surfaces."""
        return cls(max_retries=0, max_rate_limit_waits=0, reconcile_orders=False)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """The wait before retry number ``attempt`` (0-based), honouring ``Retry-After``."""
        backoff = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        backoff *= 1.0 - self.jitter * rng.random()
        if retry_after is not None:
            return max(backoff, retry_after)
        return backoff


# -- what one call did ----------------------------------------------------------------------


@attrs.define
class SendTrace:
    """What a call's attempts did, for the order path to judge a failure by.

    ``reached`` is whether the latest attempt may have reached the server (it left, and
    neither failed to connect nor drew a 429); ``sent_at`` is ``clock.time()`` just
    before it left.
    """

    sent_at: float | None = None
    reached: bool = False
    attempts: int = 0
    retries: int = 0

    def sending(self, now: float) -> None:
        self.sent_at = now
        self.reached = True
        self.attempts += 1


@attrs.frozen
class Reply:
    """A 2xx (or 304) response and its parsed JSON body (None when not parsed)."""

    response: httpx.Response
    data: Any = None


class _Oversized(Exception):
    """A body longer than the pipeline reads."""


# -- the pipeline ---------------------------------------------------------------------------


class HTTPPipeline:
    """Sends one API call: auth headers, limiter, retries, error mapping, decoding."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        http_client: httpx.AsyncClient | None,
        clock: Clock,
        limits: KeyLimits,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "X-Api-Key": api_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = retry
        self.owns_client = http_client is None
        self.client = http_client if http_client is not None else httpx.AsyncClient()
        self.clock = clock
        #: The key's shared limiters, activation slots and success-rate tracker.
        self.limits = limits
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"<HTTPPipeline {self.base_url!r}>"

    async def send(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        shield: bool = False,
        trace: SendTrace | None = None,
    ) -> httpx.Response:
        """Send the call, retrying what is safe to retry; return a 2xx or 304 response."""
        reply = await self._call(
            endpoint,
            method,
            path,
            params=params,
            json_body=json_body,
            files=files,
            headers=headers,
            idempotent=idempotent,
            shield=shield,
            trace=trace,
            parse=False,
        )
        return reply.response

    async def fetch(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        shield: bool = False,
        trace: SendTrace | None = None,
    ) -> Reply:
        """As :meth:`send`, and parse the JSON body (an idempotent call retries a body
        that is not valid JSON; an error object in a 2xx raises the error it names)."""
        return await self._call(
            endpoint,
            method,
            path,
            params=params,
            json_body=json_body,
            files=None,
            headers=headers,
            idempotent=idempotent,
            shield=shield,
            trace=trace,
            parse=True,
        )

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
        files: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        idempotent: bool,
        shield: bool,
        trace: SendTrace | None,
        parse: bool,
    ) -> Reply:
        """The loop: wait for a token, send, judge the outcome, wait, go again.

        The endpoint's rate limiter is the one place every request waits for its turn.
        With ``shield``, a request that has left is seen through (its body read) even if
        the caller is cancelled: its answer may hold a number that must not be lost.
        Waiting for a token, or for a retry, stays cancellable.
        """
        policy = self.retry
        clock = self.clock
        deadline = None if policy.deadline is None else clock.monotonic() + policy.deadline
        url = self.base_url + path
        request_headers = self._headers if headers is None else {**self._headers, **headers}
        attempt = 0
        rate_limit_waits = 0
        last_error: PlatfoneError | None = None
        while True:
            request = self.client.build_request(
                method,
                url,
                params=params,
                json=json_body,
                files=files,
                headers=request_headers,
                timeout=self._timeout,
            )
            permit = self.limits.acquire(endpoint)
            if not await _enter(permit, deadline, clock):
                raise APITimeoutError(
                    f"{method} {path}: the call's deadline ({policy.deadline:g} s) passed "
                    "while waiting for a rate-limit token; this attempt was not sent"
                ) from last_error
            retry_after: float | None = None
            started = time.perf_counter()
            try:
                try:
                    if trace is not None:
                        trace.sending(clock.time())
                    if shield:
                        with anyio.CancelScope(shield=True):
                            response, oversized = await self._exchange(request)
                    else:  # a cancel scope costs microseconds: only where it is needed
                        response, oversized = await self._exchange(request)
                finally:
                    await permit.__aexit__(None, None, None)
            except httpx.TransportError as exc:
                error: PlatfoneError = _connection_error(exc, method, path)
                never_sent = isinstance(exc, _NEVER_SENT)
                if never_sent and trace is not None:
                    trace.reached = False
                may_retry = idempotent or never_sent
                if isinstance(exc, httpx.TimeoutException) and not policy.retry_timeouts:
                    may_retry = False
                cause: BaseException | None = exc
                _log(method, path, type(exc).__name__, started, attempt)
            else:
                _log(method, path, response.status_code, started, attempt)
                status = response.status_code
                if 200 <= status < 300 or status == 304:
                    if oversized:
                        raise _oversized_error(response)
                    if not parse or status == 304:
                        return Reply(response)
                    try:
                        return Reply(response, self.json(response))
                    except ResponseDecodeError as exc:
                        # Cut short or garbled on the way: a GET may simply ask again.
                        error, cause = exc, exc.__cause__
                        may_retry = idempotent
                        if not may_retry or attempt >= policy.max_retries:
                            raise
                else:
                    error = make_api_error(status, response.text, response.headers)
                    if isinstance(error, RateLimitError):
                        # A 429 means the server did not act: even an order may go again.
                        if trace is not None:
                            trace.reached = False
                        wait = self._on_rate_limited(endpoint, error, response)
                        if (
                            wait is not None
                            and rate_limit_waits < policy.max_rate_limit_waits
                            and _fits(deadline, wait, clock)
                        ):
                            rate_limit_waits += 1
                            logger.debug(
                                "%s %s: waiting %.1f s for the rate limit", method, path, wait
                            )
                            await clock.sleep(wait)
                            continue
                        raise error
                    may_retry = idempotent and status in policy.retry_statuses
                    retry_after = _retry_after(response.headers.get("retry-after"), clock)
                    cause = None
            last_error = error
            if not may_retry or attempt >= policy.max_retries:
                raise error from cause
            if retry_after is not None and retry_after > policy.max_server_wait:
                raise error from cause  # the server asks for a longer pause than we wait
            wait = policy.delay(attempt, retry_after, self._rng)
            if not _fits(deadline, wait, clock):
                raise error from cause
            logger.debug("%s %s: retrying in %.2f s after %s", method, path, wait, error)
            await clock.sleep(wait)
            attempt += 1
            if trace is not None:
                trace.retries += 1

    async def _exchange(self, request: httpx.Request) -> tuple[httpx.Response, bool]:
        """Send ``request`` and read its body, up to a cap; (response, whether cut)."""
        response = await self.client.send(request, stream=True)
        try:
            ok = 200 <= response.status_code < 300
            cap = MAX_RESPONSE_BYTES if ok else MAX_ERROR_BYTES
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) <= cap:
                # The usual case: a body of announced, acceptable size - httpx's own read.
                await response.aread()
                return response, False
            chunks: list[bytes] = []
            size = 0
            oversized = False
            # aiter_bytes() is an async generator: close it when the read is cut short.
            body = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
            async with contextlib.aclosing(body) as stream:
                async for chunk in stream:
                    size += len(chunk)
                    if size > cap:
                        chunks.append(chunk[: len(chunk) - (size - cap)])
                        oversized = True
                        break
                    chunks.append(chunk)
            # What httpx's own aread() does, with a cap: the body read becomes .content.
            response._content = b"".join(chunks)
        finally:
            await response.aclose()
        return response, oversized

    def _on_rate_limited(
        self, endpoint: str, error: RateLimitError, response: httpx.Response
    ) -> float | None:
        """Learn from a 429; return how long to wait before trying again, or None to raise."""
        if isinstance(error, AccountBlockedError):
            # The 24 h block is never waited out silently: every order on the key, queued
            # or new, fails now. Everything else goes on, so that numbers already open can
            # still be watched, finalized and cancelled.
            self.limits.block_account(
                functools.partial(make_api_error, error.status_code, error.body, response.headers),
                until=error.reset_at,
                endpoints=_ORDERING,
            )
            return None
        if isinstance(error, ActiveActivationsLimitError):
            return None  # the order path decides (it holds the slot)
        now = self.clock.time()
        if error.reset_at is not None:
            wait = error.reset_at.timestamp() - now
        else:
            wait = _retry_after(response.headers.get("retry-after"), self.clock) or 1.0
        wait = max(wait, 0.0)
        self.limits.block_endpoint(endpoint, now + wait)
        return wait if wait <= self.retry.max_server_wait else None

    def decode(self, response: httpx.Response, cl: type[T] | Any) -> T:
        """The response's JSON structured into ``cl``."""
        result: T = self.decode_reply(Reply(response, self.json(response)), cl)
        return result

    def decode_reply(self, reply: Reply, cl: type[T] | Any) -> T:
        """A fetched reply's JSON structured into ``cl``."""
        response = reply.response
        result: T = decode(
            reply.data, cl, status_code=response.status_code, text=_text_of(response)
        )
        return result

    def decode_page(self, reply: Reply, item_cls: type[T], items_key: str) -> Page[T]:
        """A fetched paginated reply's JSON structured into a :class:`Page`."""
        response = reply.response
        return decode_page(
            reply.data,
            item_cls,
            items_key,
            status_code=response.status_code,
            text=_text_of(response),
        )

    def json(self, response: httpx.Response) -> Any:
        """The parsed body; an error object in a 2xx body raises as the error it names."""
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            raise ResponseDecodeError(
                f"response is not valid JSON ({exc})",
                status_code=response.status_code,
                body=response.text,
                path=None,
            ) from exc
        if isinstance(data, dict) and isinstance(data.get("errorName"), str):
            raise make_api_error(response.status_code, response.text, response.headers)
        return data

    async def aclose(self) -> None:
        if self.owns_client:
            await self.client.aclose()


async def _enter(
    permit: AbstractAsyncContextManager[None], deadline: float | None, clock: Clock
) -> bool:
    """Take the permit's token; False when ``deadline`` (clock.monotonic) passed first."""
    if deadline is None:
        await permit.__aenter__()
        return True
    remaining = deadline - clock.monotonic()
    if remaining <= 0:
        return False
    entered = False
    # The clock, not the event loop, says when the deadline passes: race a sleep on it.
    # A waiter cancelled in the limiter's queue takes no token (and hands on a grant).
    async with anyio.create_task_group() as tg:

        async def expire() -> None:
            await clock.sleep(remaining)
            tg.cancel_scope.cancel()

        tg.start_soon(expire)
        await permit.__aenter__()
        entered = True
        tg.cancel_scope.cancel()
    return entered


def _fits(deadline: float | None, wait: float, clock: Clock) -> bool:
    return deadline is None or clock.monotonic() + wait <= deadline


def _text_of(response: httpx.Response) -> Callable[[], str]:
    return lambda: response.text


def _oversized_error(response: httpx.Response) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"response body is larger than {MAX_RESPONSE_BYTES} bytes; not decoded",
        status_code=response.status_code,
        body=response.text,
        path=None,
    )


def _connection_error(exc: httpx.TransportError, method: str, path: str) -> APIConnectionError:
    kind = type(exc).__name__
    detail = str(exc) or kind
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{method} {path}: timed out ({kind}: {detail})")
    return APIConnectionError(f"{method} {path}: connection failed ({kind}: {detail})")


def _retry_after(value: str | None, clock: Clock) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - clock.time())


def _log(method: str, path: str, outcome: object, started: float, attempt: int) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug(
            "%s %s -> %s in %.1f ms (attempt %d)", method, path, outcome, elapsed_ms, attempt + 1
        )
