"""What is tried again: :class:`RetryPolicy`, and :class:`SendTrace`, what a call's attempts did.

:class:`RetryPolicy` is the one place that says which failures are tried again, how
often, how long to wait in between, and how long a call may take in all. The pipeline
(``_http``) follows it and records in a :class:`SendTrace` whether an attempt may have
reached the server; the order flow (``_orders``, ``_reconcile``) judges failures by it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import attrs

from ._errors import InvalidParameterError
from ._validate import int_in_range, non_negative

__all__ = ["RetryPolicy", "SendTrace", "client_policy"]


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


def client_policy(
    max_retries: int, rate_limit_wait: float, retry_policy: RetryPolicy | None
) -> RetryPolicy:
    """The client's policy: ``retry_policy``, or the default with the two shorthands."""
    if retry_policy is None:
        return RetryPolicy(
            max_retries=int_in_range(max_retries, "max_retries", 0),
            max_server_wait=non_negative(rate_limit_wait, "rate_limit_wait"),
        )
    if not isinstance(retry_policy, RetryPolicy):
        raise InvalidParameterError("retry_policy", "must be a RetryPolicy", retry_policy)
    defaults = RetryPolicy()
    if max_retries != defaults.max_retries:
        raise InvalidParameterError(
            "max_retries", "give it inside retry_policy (RetryPolicy(max_retries=...))", max_retries
        )
    if rate_limit_wait != defaults.max_server_wait:
        raise InvalidParameterError(
            "rate_limit_wait",
            "give it inside retry_policy (RetryPolicy(max_server_wait=...))",
            rate_limit_wait,
        )
    return retry_policy
