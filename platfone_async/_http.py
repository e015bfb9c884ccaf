"""The request pipeline every endpoint goes through: build, limit, send, retry, map, decode.

It follows the client's :class:`~platfone_async._retry.RetryPolicy`. An order (the one
POST that costs money) is never resent here once it may have reached the server: the
pipeline records in a :class:`~platfone_async._retry.SendTrace` whether it may have, and
the order flow (``_orders`` and ``_reconcile``) decides what happens next.

About 480 lines, one class on purpose: one call's attempt loop (limit, send, read, map,
wait, retry) shares its state from step to step, and a reader follows one request
through it top to bottom.
"""

from __future__ import annotations

import contextlib
import copy as copy_module
import email.utils
import functools
import json
import logging
import math
import random
import time
import warnings
import zlib
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

import anyio
import httpx

from ._clock import Clock
from ._convert import decode, decode_page
from ._deadline import AsyncioDeadlines, current_task_function
from ._errors import (
    MAX_BODY_KEPT,
    AccountBlockedError,
    ActiveActivationsLimitError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    PlatfoneError,
    RateLimitError,
    ResponseDecodeError,
    make_api_error,
)
from ._models import Page
from ._ratelimit import KeyLimits
from ._redact import Redactor
from ._retry import RetryPolicy, SendTrace
from ._version import __version__

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_ERROR_BYTES",
    "USER_AGENT",
    "HTTPPipeline",
    "Reply",
]

T = TypeVar("T")

logger = logging.getLogger("platfone_async")

USER_AGENT = f"platfone-async/{__version__} httpx/{httpx.__version__}"

#: The endpoints an account block (the low-success-rate 24 h block) refuses.
_ORDERING = frozenset({"create_activation"})

#: The most of a successful response's body read by default (``max_response_bytes``):
#: the largest real answers, the price lists, are a few hundred KB.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: The most of an error response's body that is read (an error object is a few hundred bytes).
MAX_ERROR_BYTES = 1024 * 1024
#: Of a body beyond the cap, this much is kept for the error (as much as its ``.body``
#: shows of an ASCII body); the rest is dropped, or never read.
_OVERSIZED_KEPT = MAX_BODY_KEPT
_INFLATE_STEP = 64 * 1024

#: Transport errors raised before the request could leave: nothing reached the server.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_BUILD_REQUEST = httpx.AsyncClient.build_request


class Reply:
    """A 2xx (or 304) response and its parsed JSON body (None when not parsed).

    A plain slotted class: one is made per call and read once.
    """

    __slots__ = ("data", "response")

    def __init__(self, response: httpx.Response, data: Any = None) -> None:
        self.response = response
        self.data = data


#: Marks a response sent back unparsed whose body was cut at ``max_response_bytes``.
_OVERSIZED = "platfone_async.oversized"

#: ``asyncio.current_task``, found on the first request that may need it (see _deadline).
_current_task: Callable[[], Any] | None = None


def _find_current_task() -> Callable[[], Any] | None:
    global _current_task
    _current_task = current_task_function()
    return _current_task


async def _read_capped(response: httpx.Response, cap: int, declared: str) -> bool:
    """Read the body into ``response.content``, at most ``cap`` bytes once decoded;
    whether it was longer (then only its first bytes are kept, the rest never read).

    The raw stream is read and inflated here, not through httpx's decoders: a
    compressed body is inflated a bounded piece at a time (a gzip bomb stops at the
    cap), and a read cut short closes every generator it opened.
    """
    inflate = _inflater(response.headers.get("content-encoding", ""))
    # A plain body announced beyond the cap: only what an error keeps is read.
    announced = inflate is None and declared.isdigit() and int(declared) > cap
    limit = _OVERSIZED_KEPT if announced else cap
    chunks: list[bytes] = []
    size = 0
    oversized = False
    stream = cast(httpx.AsyncByteStream, response.stream)
    raw = cast(AsyncGenerator[bytes, None], stream.__aiter__())
    async with contextlib.aclosing(raw):
        try:
            async for piece in raw:
                pieces = (piece,) if inflate is None else _inflated(inflate, piece, limit - size)
                for chunk in pieces:
                    if size + len(chunk) > limit:
                        oversized = True
                        chunks.append(chunk[: max(0, _OVERSIZED_KEPT - size)])
                        break
                    size += len(chunk)
                    chunks.append(chunk)
                if oversized:
                    break
        except Exception:
            await _abandon(response, raw)
            raise
        if oversized:
            await _abandon(response, raw)
    if oversized:  # keep the first bytes only, never a second copy of all that was read
        kept: list[bytes] = []
        room = _OVERSIZED_KEPT
        for chunk in chunks:
            if room <= 0:
                break
            kept.append(chunk[:room])
            room -= len(chunk)
        chunks.clear()
        chunks = kept
    # What httpx's own aread() does, with a cap: the body read becomes .content, and
    # the stream counts as consumed (a raw re-read raises StreamConsumed).
    response._content = b"".join(chunks)
    response.is_stream_consumed = True
    return oversized


async def _abandon(response: httpx.Response, raw: AsyncGenerator[bytes, None]) -> None:
    """Stop reading a body midway: close the connection, then let the stream's nested
    generators run into that closed end (closing only the outermost would leave the
    inner ones to the garbage collector, which trio reports as a ResourceWarning)."""
    await response.aclose()
    with contextlib.suppress(Exception), anyio.move_on_after(1.0):
        for _ in range(64):  # what was buffered before the close, then the closed end
            await raw.__anext__()


def _inflater(encoding: str) -> Any:
    """A zlib decompressor for a gzip or deflate body; None for a plain one."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # a zlib or gzip header, detected
    raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")


def _inflated(inflate: Any, piece: bytes, room: int) -> list[bytes]:
    """``piece`` inflated in steps of 64 KiB, stopping once more than ``room`` bytes
    came out (zlib would otherwise hold a whole inflated piece twice while joining it)."""
    out: list[bytes] = []
    total = 0
    data = piece
    try:
        while True:
            part: bytes = inflate.decompress(data, _INFLATE_STEP)
            out.append(part)
            total += len(part)
            data = inflate.unconsumed_tail
            if not data or total > room:
                return out
    except zlib.error as exc:
        raise httpx.DecodingError(f"the compressed body is corrupt ({exc})") from exc


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
        rng: random.Random,
        limits: KeyLimits,
        proxy: str | httpx.Proxy | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        request_deadline: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._absolute = httpx.URL(self.base_url).is_absolute_url  # else httpx joins its own
        self._headers = {
            "X-Api-Key": api_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            # What _read_capped inflates a piece at a time (never br or zstd).
            "Accept-Encoding": "gzip, deflate",
        }
        #: The most of a successful answer that is read; beyond it, ResponseDecodeError.
        self.max_response_bytes = max_response_bytes
        self._explicit_deadline = request_deadline
        self._deadlines: AsyncioDeadlines | None = None  # made on the first request
        self._set_timeout(timeout)
        self._redactor = Redactor(api_key)
        self.retry = retry
        self.owns_client = http_client is None
        self.client = http_client if http_client is not None else httpx.AsyncClient(proxy=proxy)
        self._base_raw: list[tuple[bytes, bytes]] | None = None  # client.headers last merged
        self._merged_headers = httpx.Headers()
        self.clock = clock
        #: The key's shared limiters, activation slots and success-rate tracker.
        self.limits = limits
        self._rng = rng

    def __repr__(self) -> str:
        return f"<HTTPPipeline {self.base_url!r}>"

    def _set_timeout(self, timeout: float | httpx.Timeout | None) -> None:
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._timeout_dict = self._timeout.as_dict()
        explicit = self._explicit_deadline
        deadline = _deadline_of(self._timeout) if explicit is None else explicit
        #: Real seconds one request may take as a whole - connect, send and the entire
        #: answer read - however slowly the server trickles it; None: no such bound.
        self.request_deadline = None if deadline is None or math.isinf(deadline) else deadline

    def _build_request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
        files: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Request:
        """The request ``client.build_request`` would build, built for less.

        httpx's ``build_request`` merges the client's headers with ours on every call,
        a third of the SDK's own cost per call (profiled: ``_merge_headers``, and a
        ``Timeout`` made and turned into a dict). Here the merge is reused until the
        client's headers change; the rest is the same public steps: the client's params
        merged with ours, its cookies, our absolute URL (a ``base_url`` on the client
        never applies to one). A relative URL, a call with headers of its own and a
        client class that overrides ``build_request`` go httpx's own way.
        """
        client = self.client
        if (
            headers is not None
            or not self._absolute
            or type(client).build_request is not _BUILD_REQUEST
        ):
            return client.build_request(
                method,
                url,
                params=params,
                json=json_body,
                files=files,
                headers=self._headers if headers is None else {**self._headers, **headers},
                timeout=self._timeout,
            )
        base = client.headers
        raw = base.raw
        if raw != self._base_raw:
            merged = httpx.Headers(base)
            merged.update(self._headers)
            self._merged_headers, self._base_raw = merged, raw
        query = client.params
        return httpx.Request(
            method,
            url,
            params=query.merge(params) if query else params,
            json=json_body,
            files=files,
            headers=self._merged_headers,
            cookies=client.cookies or None,
            # fresh dicts, as build_request makes: a hook may write to a request's own
            extensions={"timeout": dict(self._timeout_dict)},
        )

    @property
    def timeout(self) -> httpx.Timeout:
        return self._timeout

    def with_options(
        self, *, timeout: float | httpx.Timeout | None, retry: RetryPolicy
    ) -> HTTPPipeline:
        """A pipeline like this one with another timeout and policy: the same connection
        pool (which it leaves open), limits, clock and headers."""
        copy = copy_module.copy(self)
        copy._set_timeout(timeout)
        copy.retry = retry
        copy.owns_client = False
        return copy

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
        attempt = 0
        rate_limit_waits = 0
        last_error: PlatfoneError | None = None
        while True:
            request = self._build_request(method, url, params, json_body, files, headers)
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
                    if not parse or status == 304:
                        if oversized:  # for decode() to say so, should the caller read it
                            response.extensions[_OVERSIZED] = True
                        return Reply(response)  # a write's 200 says all: its body is not read
                    if oversized:
                        raise self._oversized_error(response)
                    try:
                        return Reply(response, self.json(response))
                    except ResponseDecodeError as exc:
                        # Cut short or garbled on the way: a GET may simply ask again.
                        error, cause = exc, exc.__cause__
                        may_retry = idempotent
                        if not may_retry or attempt >= policy.max_retries:
                            raise
                else:
                    error = self._api_error(response, oversized)
                    if isinstance(error, RateLimitError):
                        # A 429 means the server did not act: even an order may go again.
                        if trace is not None:
                            trace.reached = False
                        wait = await self._on_rate_limited(endpoint, error, response)
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
                    retry_after = _retry_after(
                        response.headers.get("retry-after"),
                        _server_time(response) or clock.time(),
                    )
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
        """Send ``request`` and read its body, up to a cap, within the request deadline;
        (response, whether cut). Past the deadline: ``httpx.ReadTimeout``."""
        deadline = self.request_deadline
        if deadline is None:
            return await self._send_and_read(request)
        current_task = _current_task or _find_current_task()
        try:
            task = None if current_task is None else current_task()
        except RuntimeError:  # no asyncio loop running: trio
            task = None
        if task is not None:
            deadlines = self._deadlines
            if deadlines is None or deadlines.loop is not task.get_loop():
                deadlines = self._deadlines = AsyncioDeadlines(task.get_loop())
            cancelling = task.cancelling()
            deadlines.enter(task, deadline)
            try:
                result = await self._send_and_read(request)
            except anyio.get_cancelled_exc_class():
                # (as asyncio.timeout() judges it) cancelled from outside too: go on
                if not deadlines.leave(task) or task.uncancel() > cancelling:
                    raise
            except BaseException:
                deadlines.leave(task)
                raise
            else:
                if deadlines.leave(task):  # it fired as the answer completed: take it back
                    task.uncancel()
                return result
        else:
            with anyio.move_on_after(deadline):
                return await self._send_and_read(request)
        # As a read timeout: the request may have reached the server (an order is
        # reconciled, never resent).
        raise httpx.ReadTimeout(
            f"no complete answer within the request deadline of {deadline:g} s",
            request=request,
        )

    async def _send_and_read(self, request: httpx.Request) -> tuple[httpx.Response, bool]:
        # Never a redirect, whatever the injected client says: the key would go with it.
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            ok = 200 <= response.status_code < 300
            cap = self.max_response_bytes if ok else min(MAX_ERROR_BYTES, self.max_response_bytes)
            declared = response.headers.get("content-length", "")
            oversized = False
            if (
                declared.isdigit()
                and int(declared) <= cap
                and "content-encoding" not in response.headers
            ):
                # The usual case: a body of announced, acceptable size - httpx's own read.
                await response.aread()
            else:
                try:
                    oversized = await _read_capped(response, cap, declared)
                except httpx.DecodingError as exc:
                    response._content = b""
                    if ok:
                        raise self._decode_error(response, str(exc)) from exc
                    # an error status says enough without its garbled page
        finally:
            await response.aclose()
        # httpx's response and its stream point at each other: a cycle of ~20 objects a
        # call that only the garbage collector frees (and among 10,000 sleeping watchers
        # each collection walks them all). Read and closed, the stream is its content,
        # as httpx makes it for a request it has read.
        response.stream = httpx.ByteStream(response.content)
        return response, oversized

    async def _on_rate_limited(
        self, endpoint: str, error: RateLimitError, response: httpx.Response
    ) -> float | None:
        """Learn from a 429; return how long to wait before trying again, or None to raise."""
        if isinstance(error, AccountBlockedError):
            # The 24 h block is never waited out silently: every order on the key, queued
            # or new, fails now. Everything else goes on, so that numbers already open can
            # still be watched, finalized and cancelled.
            await self.limits.block_account(
                functools.partial(make_api_error, error.status_code, error.body, response.headers),
                until=error.reset_at,
                endpoints=_ORDERING,
            )
            return None
        if isinstance(error, ActiveActivationsLimitError):
            return None  # the order path decides (it holds the slot)
        now = self.clock.time()
        # A reset is a moment on the server's clock: read it against the server's "now"
        # (its Date header), so a host whose clock is off neither hammers nor gives up.
        server_now = _server_time(response) or now
        if error.reset_at is not None:
            wait = error.reset_at.timestamp() - server_now
        else:
            wait = _retry_after(response.headers.get("retry-after"), server_now) or 1.0
        wait = max(wait, 0.0)
        await self.limits.block_endpoint(endpoint, now + wait)
        return wait if wait <= self.retry.max_server_wait else None

    def decode(self, response: httpx.Response, cl: type[T] | Any) -> T:
        """The response's JSON structured into ``cl``."""
        if response.extensions.get(_OVERSIZED):
            raise self._oversized_error(response)
        result: T = self.decode_reply(Reply(response, self.json(response)), cl)
        return result

    def decode_reply(self, reply: Reply, cl: type[T] | Any) -> T:
        """A fetched reply's JSON structured into ``cl``."""
        response = reply.response
        try:
            result: T = decode(
                reply.data, cl, status_code=response.status_code, text=_text_of(response)
            )
        except ResponseDecodeError as exc:
            raise self._redactor.error(exc, response) from exc.__cause__
        return result

    def decode_page(self, reply: Reply, item_cls: type[T], items_key: str) -> Page[T]:
        """A fetched paginated reply's JSON structured into a :class:`Page`."""
        response = reply.response
        try:
            return decode_page(
                reply.data,
                item_cls,
                items_key,
                status_code=response.status_code,
                text=_text_of(response),
            )
        except ResponseDecodeError as exc:
            raise self._redactor.error(exc, response) from exc.__cause__

    def json(self, response: httpx.Response) -> Any:
        """The parsed body; an error object in a 2xx body raises as the error it names."""
        try:
            data = json.loads(response.content)
        except RecursionError as exc:
            raise self._decode_error(response, "response is nested too deeply to parse") from exc
        except ValueError as exc:  # not JSON, or not UTF-8 (a UnicodeDecodeError)
            raise self._decode_error(response, f"response is not valid JSON ({exc})") from exc
        if isinstance(data, dict) and isinstance(data.get("errorName"), str):
            raise self._api_error(response)
        return data

    # -- errors built from a response: the key masked out of all they keep -----------------

    def _api_error(self, response: httpx.Response, oversized: bool = False) -> PlatfoneError:
        """The error for a non-2xx answer (a redirect is one: it is never followed)."""
        status = response.status_code
        text = response.text
        if 300 <= status < 400:
            error: PlatfoneError = _redirect_error(response, text)
        else:
            error = make_api_error(status, text, response.headers)
        if oversized and isinstance(error, APIError):
            error.body_truncated = True
        return self._redactor.error(error, response)

    def _decode_error(self, response: httpx.Response, message: str) -> PlatfoneError:
        error = ResponseDecodeError(
            message, status_code=response.status_code, body=response.text, path=None
        )
        return self._redactor.error(error, response)

    def _oversized_error(self, response: httpx.Response) -> PlatfoneError:
        error = ResponseDecodeError(
            f"response body is larger than max_response_bytes ({self.max_response_bytes} "
            "bytes); reading stopped there, nothing decoded",
            status_code=response.status_code,
            body=response.text,
            path=None,
        )
        error.body_truncated = True
        return self._redactor.error(error, response)

    async def aclose(self) -> None:
        if self.owns_client:
            await self.client.aclose()

    def __del__(self) -> None:
        # An httpx client this pipeline made and nobody closed: say so, as files and
        # sockets do (a ResourceWarning: silent by default, shown by pytest and -X dev).
        client = self.__dict__.get("client")
        if self.__dict__.get("owns_client") and client is not None and not client.is_closed:
            warnings.warn(
                f"unclosed AsyncPlatfone for {self.base_url!r}: use 'async with' or "
                "'await client.aclose()'",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )


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


def _deadline_of(timeout: httpx.Timeout) -> float | None:
    """The whole-request deadline a timeout implies: its longest phase (None: unbounded)."""
    phases = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    if any(phase is None for phase in phases):
        return None
    return max(cast(float, phase) for phase in phases)


def _redirect_error(response: httpx.Response, text: str) -> APIError:
    location = response.headers.get("location", "")
    try:
        target = httpx.URL(location)
        host = target.host or response.request.url.host
    except (httpx.InvalidURL, ValueError):
        host = "an unreadable location"
    return APIError(
        f"the server redirected this request ({response.status_code}) to {host}; redirects "
        "are never followed (the API key would go with them): check base_url",
        status_code=response.status_code,
        body=text,
    )


def _connection_error(exc: httpx.TransportError, method: str, path: str) -> APIConnectionError:
    kind = type(exc).__name__
    detail = str(exc) or kind
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{method} {path}: timed out ({kind}: {detail})")
    return APIConnectionError(f"{method} {path}: connection failed ({kind}: {detail})")


def _server_time(response: httpx.Response) -> float | None:
    """The server's clock when it answered (its ``Date`` header; None without one)."""
    try:
        when = email.utils.parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when.tzinfo is not None else None


def _retry_after(value: str | None, now: float) -> float | None:
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
    return max(0.0, when.timestamp() - now)


def _log(method: str, path: str, outcome: object, started: float, attempt: int) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug(
            "%s %s -> %s in %.1f ms (attempt %d)", method, path, outcome, elapsed_ms, attempt + 1
        )
