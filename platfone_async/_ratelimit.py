"""Client-side rate limiting (placeholder: the limiter itself lands with its own issue)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["DOCUMENTED_RATE_LIMITS", "RateLimit"]


@attrs.frozen
class RateLimit:
    """At most ``calls`` requests in any rolling window of ``period`` seconds."""

    calls: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    period: float = attrs.field(converter=float, validator=attrs.validators.gt(0.0))


#: The per-endpoint limits of the reference's "Rate limits" table, by method name.
DOCUMENTED_RATE_LIMITS: Mapping[str, RateLimit | None] = {
    "get_balance": RateLimit(300, 60),
    "create_activation": RateLimit(300, 60),
    "retry_activation": RateLimit(50, 60),
    "cancel_activation": RateLimit(50, 60),
    "get_activation_history": RateLimit(6, 60),
    "get_activation": RateLimit(300, 60),
    "get_countries": RateLimit(15, 60),
    "get_services": RateLimit(15, 60),
    "get_prices_by_country": RateLimit(6, 60),
    "get_prices_by_service": RateLimit(6, 60),
    "get_price": RateLimit(60, 60),
}
