"""The request pipeline every endpoint goes through: build, limit, send, retry, map, decode."""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

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
    PlatfoneError,
    RateLimitError,
    ResponseDecodeError,
    make_api_error,
)
from ._models import Page
from ._ratelimit import KeyLimits
from ._version import __version__

__all__ = ["HTTPPipeline", "RetryPolicy", "USER_AGENT"]

T = TypeVar("T")

logger = logging.getLogger("platfone_async")

USER_AGENT = f"platfone-async/{__version__} httpx/{httpx.__version__}"

_RETRYABLE_STATUS = frozenset({502, 503, 504})

#: The endpoints an account block (the low-success-rate 24 h block) refuses.
_ORDERING = frozenset({"create_activation"})

#: How often one call waits out a server 429 before giving up.
_MAX_RATE_LIMIT_WAITS = 5


@attrs.frozen
class RetryPolicy:
    """When and how an idempotent call is tried again.

    Connection failures and 502/503/504 are retried up to ``max_retries`` times, waiting
    ``min(backoff_max, backoff_base * 2**attempt)`` scaled by a random factor in
    ``[1 - jitter, 1]`` (or the server's ``Retry-After``, if longer and at most
    ``backoff_max``). An order (POST) is retried only when it provably never left:
    the connection could not be made.
    """

    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.5

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        backoff *= 1.0 - self.jitter * rng.random()
        if retry_after is not None and retry_after <= self.backoff_max:
            return max(backoff, retry_after)
        return backoff


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
        rate_limit_wait: float = 60.0,
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
        #: The longest server 429 reset a call waits out by itself.
        self.rate_limit_wait = rate_limit_wait
        self._rng = random.Random()

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
    ) -> httpx.Response:
        """Send the call, retrying what is safe to retry; return a 2xx or 304 response.

        The endpoint's rate limiter is the one place every request waits for its turn.
        With ``shield``, a request that has left is seen through even if the caller is
        cancelled (its answer may hold a number that must not be lost); waiting for a
        token, or for a retry, stays cancellable.
        """
        url = self.base_url + path
        request_headers = self._headers if headers is None else {**self._headers, **headers}
        attempt = 0
        rate_limit_waits = 0
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
            retry_after: float | None = None
            started = time.perf_counter()
            try:
                async with self.limits.acquire(endpoint):
                    with anyio.CancelScope(shield=shield):
                        response = await self.client.send(request)
            except httpx.TransportError as exc:
                error: PlatfoneError = _connection_error(exc, method, path)
                never_sent = isinstance(
                    exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
                )
                may_retry = idempotent or never_sent
                cause: BaseException | None = exc
                _log(method, path, type(exc).__name__, started, attempt)
            else:
                _log(method, path, response.status_code, started, attempt)
                status = response.status_code
                if 200 <= status < 300 or status == 304:
                    return response
                error = make_api_error(status, response.text, response.headers)
                if isinstance(error, RateLimitError):
                    wait = self._on_rate_limited(endpoint, error, response)
                    if wait is not None and rate_limit_waits < _MAX_RATE_LIMIT_WAITS:
                        # A 429 means the server did not act: even an order may be resent.
                        rate_limit_waits += 1
                        logger.debug("%s %s: waiting %.1f s for the rate limit", method, path, wait)
                        await self.clock.sleep(wait)
                        continue
                    raise error
                may_retry = idempotent and status in _RETRYABLE_STATUS
                retry_after = _retry_after(response.headers.get("retry-after"), self.clock)
                cause = None
            if not may_retry or attempt >= self.retry.max_retries:
                raise error from cause
            await self.clock.sleep(self.retry.delay(attempt, retry_after, self._rng))
            attempt += 1

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
        return wait if wait <= self.rate_limit_wait else None

    def decode(self, response: httpx.Response, cl: type[T] | Any) -> T:
        """The response's JSON structured into ``cl``."""
        data = self.json(response)
        result: T = decode(data, cl, status_code=response.status_code, text=_text_of(response))
        return result

    def decode_page(self, response: httpx.Response, item_cls: type[T], items_key: str) -> Page[T]:
        """A paginated response's JSON structured into a :class:`Page`."""
        data = self.json(response)
        return decode_page(
            data, item_cls, items_key, status_code=response.status_code, text=_text_of(response)
        )

    def json(self, response: httpx.Response) -> Any:
        """The parsed body; an error object in a 2xx body raises as the error it names."""
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            text = response.text
            raise ResponseDecodeError(
                f"response is not valid JSON ({exc})",
                status_code=response.status_code,
                body=text,
                path=None,
            ) from exc
        if isinstance(data, dict) and isinstance(data.get("errorName"), str):
            raise make_api_error(response.status_code, response.text, response.headers)
        return data

    async def aclose(self) -> None:
        if self.owns_client:
            await self.client.aclose()


def _text_of(response: httpx.Response) -> Callable[[], str]:
    return lambda: response.text


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
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock.time())


def _log(method: str, path: str, outcome: object, started: float, attempt: int) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug(
            "%s %s -> %s in %.1f ms (attempt %d)", method, path, outcome, elapsed_ms, attempt + 1
        )
