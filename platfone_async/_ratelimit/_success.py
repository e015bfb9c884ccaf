"""The success-rate guard: count orders and first SMS over a rolling 24 h, per key.

Platfone blocks an account for 24 h when fewer than 7 % of its orders over 24 h received
an SMS, counted once 10 numbers were ordered (the reference's third limit). The SDK
cannot see the server's figure, so it keeps its own: the orders it placed in the window
and, among them, those for which it saw a first SMS. Before each order it projects the
rate *after* that order (which has no SMS yet) and, under a floor above 7 %, warns,
refuses or does nothing, so that users hear of a coming block before it happens.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Literal

from .._clock import Clock
from ._state import SuccessRateCheck, SuccessRateState
from ._wait import logger

__all__ = [
    "DAY",
    "GuardMode",
    "SuccessRateTracker",
    "apply_guard",
    "check_counts",
]

#: The server's window, in seconds.
DAY = 86_400.0

GuardMode = Literal["warn", "raise", "off"]
_MODES = ("warn", "raise", "off")


class SuccessRateTracker:
    """Orders and first SMS over a rolling window (24 h) on ``clock.time()``.

    ``record_order`` and ``record_sms`` are idempotent per activation; an SMS for an
    activation not ordered here within the window is ignored (so the rate errs low).
    """

    def __init__(self, *, clock: Clock, window: float = DAY) -> None:
        self._clock = clock
        self.window = float(window)
        self._orders: deque[tuple[float, str]] = deque()
        self._ordered: set[str] = set()
        self._succeeded: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SuccessRateTracker {len(self._succeeded)}/{len(self._ordered)}>"

    def record_order(self, activation_id: str) -> None:
        """An order placed through the SDK opened ``activation_id``."""
        with self._lock:
            self._prune()
            if activation_id not in self._ordered:
                self._ordered.add(activation_id)
                self._orders.append((self._clock.time(), activation_id))

    def record_sms(self, activation_id: str) -> None:
        """The SDK saw an SMS on ``activation_id`` (only the first one counts)."""
        with self._lock:
            self._prune()
            if activation_id in self._ordered:
                self._succeeded.add(activation_id)

    @property
    def orders(self) -> int:
        return self.state().orders

    @property
    def successes(self) -> int:
        return self.state().successes

    @property
    def rate(self) -> float | None:
        """Successes over orders in the window; None before any order."""
        return self.state().rate

    def state(self) -> SuccessRateState:
        """The counts over the window, as one consistent snapshot."""
        orders, successes = self._counts()
        return SuccessRateState(
            orders=orders, successes=successes, rate=successes / orders if orders else None
        )

    def check(self, floor: float = 0.10, min_orders: int = 10) -> SuccessRateCheck:
        """Whether the next order keeps the projected rate at or above ``floor``."""
        orders, successes = self._counts()
        return check_counts(orders, successes, floor, min_orders)

    def guard(
        self,
        mode: GuardMode,
        *,
        floor: float = 0.10,
        min_orders: int = 10,
        error: Callable[[SuccessRateCheck], BaseException],
    ) -> SuccessRateCheck | None:
        """Act on :meth:`check` before an order: ``"warn"`` logs a WARNING on the
        ``platfone_async`` logger, ``"raise"`` raises ``error(check)``, ``"off"`` does
        nothing (and returns None). Returns the check otherwise.
        """
        if mode == "off":
            return None
        return apply_guard(self.check(floor, min_orders), mode, error)

    def _counts(self) -> tuple[int, int]:
        with self._lock:
            self._prune()
            return len(self._ordered), len(self._succeeded)

    def _prune(self) -> None:
        orders = self._orders
        cutoff = self._clock.time() - self.window
        while orders and orders[0][0] <= cutoff:
            _, activation_id = orders.popleft()
            self._ordered.discard(activation_id)
            self._succeeded.discard(activation_id)


def check_counts(orders: int, successes: int, floor: float, min_orders: int) -> SuccessRateCheck:
    """What ordering once more does to a rate of ``successes`` in ``orders``."""
    projected = successes / (orders + 1)
    return SuccessRateCheck(
        ok=orders + 1 < min_orders or projected >= floor,
        orders=orders,
        successes=successes,
        projected_rate=projected,
        floor=floor,
        min_orders=min_orders,
    )


def apply_guard(
    result: SuccessRateCheck,
    mode: GuardMode,
    error: Callable[[SuccessRateCheck], BaseException],
) -> SuccessRateCheck:
    """``"warn"``: log a WARNING when ``result`` is not ok; ``"raise"``: raise ``error``."""
    _check_mode(mode)
    if not result.ok:
        if mode == "raise":
            raise error(result)
        logger.warning("%s", result.message())
    return result


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"success_rate_guard must be one of {_MODES}, not {mode!r}")
