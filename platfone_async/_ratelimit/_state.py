"""The rate limiters' snapshots: what ``rate_limit_state()`` returns, and the success-rate
guard's verdict on the next order.

Apart from the limiters themselves so that ``import platfone_async`` does not build
them (an attrs class costs about half a millisecond at import): they are made only when
someone asks for a snapshot, or an order is checked against the success-rate floor.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = [
    "KeyLimitsState",
    "LimiterState",
    "SlotsState",
    "SuccessRateCheck",
    "SuccessRateState",
]


@attrs.frozen
class LimiterState:
    """A snapshot of one limiter, for dashboards.

    ``available`` tokens could leave now (0 while blocked), ``in_use`` are held by requests
    in flight, ``cooling`` were spent and return within ``period + margin`` of their
    response, ``waiters`` are queued; ``blocked_for`` is how long a server 429 still closes
    the bucket and ``next_return_in`` when the next cooling token comes back (seconds).
    """

    name: str
    calls: int
    period: float
    available: int
    in_use: int
    cooling: int
    waiters: int
    blocked_for: float
    next_return_in: float | None


@attrs.frozen
class SlotsState:
    """A snapshot of the activation slots, for dashboards.

    ``in_use`` slots are held here (``bound`` of them to an open activation, the rest by
    orders in flight); ``external`` are believed held elsewhere, so ``effective_capacity``
    is ``capacity - external``; ``next_expiry_in`` is when the next bound slot comes
    back by itself (seconds).
    """

    capacity: int
    effective_capacity: int
    external: int
    in_use: int
    bound: int
    available: int
    waiters: int
    next_expiry_in: float | None


@attrs.frozen
class SuccessRateState:
    """Orders placed and first SMS seen over the window; ``rate`` is None before any order."""

    orders: int
    successes: int
    rate: float | None


@attrs.frozen
class SuccessRateCheck:
    """What placing the next order would do to the rate.

    ``projected_rate`` is ``successes / (orders + 1)``: the next order has no SMS yet.
    ``ok`` is False when that order would be at least the ``min_orders``-th of the window
    and ``projected_rate`` is under ``floor``.
    """

    ok: bool
    orders: int
    successes: int
    projected_rate: float
    floor: float
    min_orders: int

    def message(self) -> str:
        """A sentence for a log line or an exception."""
        return (
            f"first-SMS success rate over the last 24 h would fall to "
            f"{self.projected_rate:.1%} ({self.successes} of {self.orders + 1} orders), "
            f"under the {self.floor:.0%} floor; Platfone blocks an account for 24 h "
            f"below 7 %"
        )


@attrs.frozen
class KeyLimitsState:
    """A snapshot of everything one key's limits hold, for dashboards.

    ``account_blocked_for`` is how long an account-wide block still lasts (seconds;
    ``math.inf`` until lifted by hand, 0 when not blocked).
    """

    key: str
    base_url: str
    limiters: Mapping[str, LimiterState]
    slots: SlotsState
    success_rate: SuccessRateState
    account_blocked_for: float


# Public as ``platfone_async.KeyLimitsState`` and so on: reprs, tracebacks and pickles
# show that path however the class was first reached.
for _cls in (LimiterState, SlotsState, SuccessRateState, KeyLimitsState):
    _cls.__module__ = "platfone_async"
del _cls
