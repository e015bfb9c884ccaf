"""The documented per-endpoint request limits, enforced as rolling windows per key."""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

__all__ = ["DOCUMENTED_LIMITS", "LimitLike", "RollingWindows"]

# route name -> (calls, period in seconds): the reference's table.
DOCUMENTED_LIMITS: Mapping[str, tuple[int, float]] = MappingProxyType(
    {
        "get_balance": (300, 60.0),
        "create_activation": (300, 60.0),
        "retry_activation": (50, 60.0),
        "cancel_activation": (50, 60.0),
        "get_activation_history": (6, 60.0),
        "get_activation": (300, 60.0),
        "get_countries": (15, 60.0),
        "get_services": (15, 60.0),
        "get_prices_by_country": (6, 60.0),
        "get_prices_by_service": (6, 60.0),
        "get_price": (60, 60.0),
    }
)


class _HasCallsAndPeriod(Protocol):
    @property
    def calls(self) -> int: ...

    @property
    def period(self) -> float: ...


# A limit is ``(calls, period)`` or anything with ``.calls`` and ``.period``
# (``platfone_async.RateLimit`` included); None means unlimited.
LimitLike = tuple[int, float] | _HasCallsAndPeriod | None


def as_pair(limit: LimitLike) -> tuple[int, float] | None:
    if limit is None:
        return None
    if isinstance(limit, tuple):
        calls, period = limit
        return int(calls), float(period)
    return int(limit.calls), float(limit.period)


class RollingWindows:
    """Arrival times per (key, route); a request is refused when its window is full.

    A request counts from the moment it arrives until ``period`` seconds later; a
    refused request does not count. ``scale`` multiplies every ``calls`` (at least 1).
    """

    def __init__(self, limits: Mapping[str, LimitLike], scale: float = 1.0) -> None:
        self.limits: dict[str, tuple[int, float] | None] = {}
        self.set_limits(limits)
        self.scale = scale
        self.enabled = True
        self._arrivals: dict[tuple[str, str], collections.deque[float]] = {}

    def set_limits(self, limits: Mapping[str, LimitLike]) -> None:
        self.limits = {route: as_pair(limit) for route, limit in limits.items()}

    def limit_for(self, route: str) -> tuple[int, float] | None:
        pair = self.limits.get(route)
        if pair is None or not self.enabled:
            return None
        calls, period = pair
        return max(1, math.floor(calls * self.scale)), period

    def admit(self, api_key: str, route: str, now: float) -> float | None:
        """Count the request and return None, or return when the window reopens."""
        limit = self.limit_for(route)
        if limit is None:
            return None
        calls, period = limit
        arrivals = self._arrivals.setdefault((api_key, route), collections.deque())
        while arrivals and arrivals[0] + period <= now:
            arrivals.popleft()
        if len(arrivals) >= calls:
            return arrivals[len(arrivals) - calls] + period
        arrivals.append(now)
        return None

    def reset(self) -> None:
        self._arrivals.clear()
