"""platfone-async: the Python SDK for the Platfone Activation API."""

from typing import TYPE_CHECKING

from ._client import PRODUCTION_URL, SANDBOX_URL, AsyncPlatfone
from ._clock import Clock, SystemClock
from ._enums import (
    ActivationStatus,
    BillingStatus,
    ReportResultStatus,
    ReportStatus,
    SmsStatus,
    WebhookEventType,
)
from ._errors import (
    AccountBlockedError,
    ActivationEndedError,
    ActiveActivationsLimitError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientBalanceError,
    InvalidParameterError,
    MaxPriceExceededError,
    NoNumbersAvailableError,
    NotFoundError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    PlatfoneError,
    RateLimitBackendError,
    RateLimitError,
    ReportDeadlinePassedError,
    ResponseDecodeError,
    ServerError,
    SuccessRateGuardError,
    WaitTimeoutError,
    WebhookPayloadError,
    WebhookVerificationError,
)
from ._logging import configure_from_environment as _configure_logging
from ._models import Activation
from ._ratelimit import DOCUMENTED_RATE_LIMITS, RateLimit
from ._retry import RetryPolicy
from ._version import __version__

__all__ = [
    "DOCUMENTED_RATE_LIMITS",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccountBlockedError",
    "Activation",
    "ActivationEndedError",
    "ActivationSession",
    "ActivationStatus",
    "ActiveActivationsLimitError",
    "AsyncPlatfone",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "BillingStatus",
    "CatalogMatch",
    "Clock",
    "ConflictError",
    "Country",
    "CountryPrice",
    "CountryPrices",
    "InsufficientBalanceError",
    "InvalidParameterError",
    "KeyLimitsState",
    "LimiterState",
    "MaxPriceExceededError",
    "NoNumbersAvailableError",
    "NotFoundError",
    "OrderOutcomeUnknownError",
    "Offer",
    "Page",
    "PermissionDeniedError",
    "Platfone",
    "PlatfoneError",
    "Price",
    "PriceInfo",
    "Quality",
    "RateLimit",
    "RateLimitBackendError",
    "RateLimitError",
    "RedisBackend",
    "SQLiteBackend",
    "Report",
    "ReportDeadlinePassedError",
    "ReportReason",
    "ReportResult",
    "ReportResultStatus",
    "ReportStatus",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServerError",
    "Service",
    "ServicePrice",
    "ServicePrices",
    "SessionOutcome",
    "SlotsState",
    "SmsStatus",
    "SuccessRateGuardError",
    "SuccessRateState",
    "SyncActivationSession",
    "SystemClock",
    "WaitTimeoutError",
    "WebhookEventType",
    "WebhookPayloadError",
    "WebhookVerificationError",
    "__version__",
]


def _publish(obj: object) -> None:
    """Reprs, tracebacks and docs show the public path, not the private module."""
    if isinstance(obj, type) and obj.__module__.startswith("platfone_async._"):
        obj.__module__ = "platfone_async"


# Loaded on first use, so that `import platfone_async` stays light: the sync facade
# brings in asyncio and anyio's thread portal, the Redis backend its scripts, the
# models but the activation and catalog search are fourteen attrs classes to create,
# the session is the first `client.activation()`'s, and the limits' snapshots are the
# first `rate_limit_state()`'s.
_LAZY = {
    "ActivationSession": "._session",
    "Balance": "._models._account",
    "CatalogMatch": "._find",
    "Country": "._models._catalog",
    "CountryPrice": "._models._catalog",
    "CountryPrices": "._models._catalog",
    "KeyLimitsState": "._ratelimit._state",
    "LimiterState": "._ratelimit._state",
    "Offer": "._offers",
    "Page": "._models._page",
    "Platfone": "._sync._facade",
    "Price": "._models._catalog",
    "PriceInfo": "._models._catalog",
    "Quality": "._models._catalog",
    "RedisBackend": "._ratelimit._redis",
    "SQLiteBackend": "._ratelimit._sqlite",
    "Report": "._models._reports",
    "ReportReason": "._models._reports",
    "ReportResult": "._models._reports",
    "Service": "._models._catalog",
    "ServicePrice": "._models._catalog",
    "ServicePrices": "._models._catalog",
    "SessionOutcome": "._settle",
    "SlotsState": "._ratelimit._state",
    "SuccessRateState": "._ratelimit._state",
    "SyncActivationSession": "._sync._facade",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        value = getattr(importlib.import_module(module, __name__), name)
        _publish(value)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'platfone_async' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The names loaded on first use too, for completion in a shell or a notebook."""
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from ._find import CatalogMatch
    from ._models._account import Balance
    from ._models._catalog import (
        Country,
        CountryPrice,
        CountryPrices,
        Price,
        PriceInfo,
        Quality,
        Service,
        ServicePrice,
        ServicePrices,
    )
    from ._models._page import Page
    from ._models._reports import Report, ReportReason, ReportResult
    from ._offers import Offer
    from ._ratelimit._redis import RedisBackend
    from ._ratelimit._sqlite import SQLiteBackend
    from ._ratelimit._state import KeyLimitsState, LimiterState, SlotsState, SuccessRateState
    from ._session import ActivationSession
    from ._settle import SessionOutcome
    from ._sync._facade import Platfone, SyncActivationSession

for _name in __all__:
    if _name not in _LAZY:
        _publish(globals()[_name])
del _name

_configure_logging()
