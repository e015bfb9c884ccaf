"""The spending limit: at most ``cents`` reserved or billed within a rolling ``period``.

Why count it this way: Platfone reserves an order's price from the balance at once,
bills it when the SMS comes, and releases it when the number is cancelled or expires
without one. So the money an order takes is its price from the moment it is placed,
and it stops counting only when it is released (or refunded). An order is checked
before it leaves, at the most it may cost - its ``max_price`` (a session passes its
``price_ceiling``), else the top of the price list's range, since an order without a
cap may be sold any number there - and once it lands its actual price counts instead.

The money is counted in the key's store (``KeyStore.spend_*``), so the processes that
share a SQLite file or a Redis server share one budget; the check and the entry are one
atomic step, so two orders racing for the last room never both get it.
"""

from __future__ import annotations

import datetime as dt
import re

import attrs

from ._errors import InvalidParameterError, SpendLimitError

__all__ = ["MAX_PERIOD", "SpendLimit", "refusal"]

#: The longest period a limit may have (31 days): how long a store keeps what it counts.
MAX_PERIOD = 31 * 86_400.0

_UNITS = {"s": 1.0, "m": 60.0, "h": 3_600.0, "d": 86_400.0}
#: ``CENTS/PERIOD`` (compiled with the first ``parse``: nothing at import).
_SPEC = r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*"


def _cents(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError("cents", "must be a whole number of cents, at least 1", value)


def _period(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not 0 < value <= MAX_PERIOD:  # type: ignore[operator]
        raise InvalidParameterError(
            "period", f"must be seconds above 0, at most {MAX_PERIOD:.0f} (31 days)", value
        )


def _seconds(value: object) -> float:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterError("period", "must be seconds or a timedelta", value)
    return float(value)


@attrs.frozen
class SpendLimit:
    """At most ``cents`` (USD cents) reserved or billed within any rolling ``period``.

    ``AsyncPlatfone(..., spend_limit=SpendLimit(cents=500, period=3600))`` refuses, with
    :class:`SpendLimitError` and before any request leaves, an order whose price would
    take the money reserved or billed within the last ``period`` seconds (a
    ``timedelta`` too; at most 31 days) over ``cents``. Money released - a number
    cancelled, or expired without an SMS - does not count. See the guide "Getting a
    code at the best offer" for how an order's price is taken.
    """

    cents: int = attrs.field(validator=_cents)
    period: float = attrs.field(converter=_seconds, validator=_period)

    @classmethod
    def parse(cls, text: str) -> SpendLimit:
        """``"500/1h"``: 500 cents per hour (``s``, ``m``, ``h``, ``d``; bare: seconds).

        Raises:
            InvalidParameterError: Not ``CENTS/PERIOD``, or out of range.
        """
        found = re.fullmatch(_SPEC, text) if isinstance(text, str) else None
        if found is None:
            raise InvalidParameterError(
                "spend_limit", "must read CENTS/PERIOD, e.g. 500/1h or 2000/7d", text
            )
        cents, amount, unit = found.groups()
        return cls(int(cents), float(amount) * _UNITS[unit or "s"])

    def __str__(self) -> str:
        return f"{self.cents} cents per {_period_text(self.period)}"


def _period_text(seconds: float) -> str:
    for unit, size in (("d", 86_400.0), ("h", 3_600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def refusal(
    limit: SpendLimit, *, price: int, counted: int, room_at: float | None
) -> SpendLimitError:
    """The error of an order refused by ``limit`` (``room_at``: Unix seconds, or None)."""
    when = None if room_at is None else dt.datetime.fromtimestamp(room_at, dt.timezone.utc)
    head = (
        f"spend limit {limit}: {counted} cents reserved or billed within it, and this "
        f"order may cost up to {price}; no order was sent"
    )
    if when is None:
        tail = "this price alone is over the limit"
    else:
        tail = (
            f"room for it frees at {when.strftime('%Y-%m-%d %H:%M:%S')} UTC, or sooner "
            "as reserved numbers are released (cancelled, or expired without an SMS)"
        )
    return SpendLimitError(
        f"{head}; {tail}", limit=limit, counted=counted, price=price, room_at=when
    )
