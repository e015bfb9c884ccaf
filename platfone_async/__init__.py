"""platfone-async: the Python SDK for the Platfone Activation API."""

import importlib
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
    SpendLimitError,
    SuccessRateGuardError,
    WaitTimeoutError,
    WebhookPayloadError,
    WebhookVerificationError,
)
from ._logging import configure_from_environment as _configure_logging
from ._models import Activation, Balance, Page
from ._ratelimit import (
    DOCUMENTED_RATE_LIMITS,
    KeyLimitsState,
    LimiterState,
    RateLimit,
    SlotsState,
    SuccessRateState,
)
from ._retry import RetryPolicy
from ._session import ActivationSession
from ._settle import SessionOutcome, Settled
from ._spend import SpendLimit
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
    "OpenActivation",
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
    "Settled",
    "SlotsState",
    "SmsStatus",
    "SpendLimit",
    "SpendLimitError",
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
    """Reprs, tracebacks, pickles and docs show the public path, not the private module."""
    if isinstance(obj, type) and obj.__module__.startswith("platfone_async._"):
        obj.__module__ = "platfone_async"


# Loaded with the first use of one of their names, as what they bring in would cost a
# program that never uses them more than the rest of the package: the sync facade
# asyncio and anyio's thread portal (~25 ms), the shared stores sqlite3 and anyio's
# worker threads (~4 ms; redis itself loads with a RedisBackend's first connection),
# the catalog and report models with catalog search and offers (~10 ms together; the
# client's methods that need them import them too). See the performance page.
_CATALOG = "._models._catalog"
_REPORTS = "._models._reports"
_LOADED_ON_USE = {
    "Platfone": "._sync._facade",
    "SyncActivationSession": "._sync._facade",
    "RedisBackend": "._ratelimit._redis",
    "SQLiteBackend": "._ratelimit._sqlite",
    "CatalogMatch": "._find",
    "OpenActivation": "._recover",
    "Offer": "._offers",
    "Country": _CATALOG,
    "CountryPrice": _CATALOG,
    "CountryPrices": _CATALOG,
    "Price": _CATALOG,
    "PriceInfo": _CATALOG,
    "Quality": _CATALOG,
    "Service": _CATALOG,
    "ServicePrice": _CATALOG,
    "ServicePrices": _CATALOG,
    "Report": _REPORTS,
    "ReportReason": _REPORTS,
    "ReportResult": _REPORTS,
}


def __getattr__(name: str) -> object:
    module = _LOADED_ON_USE.get(name)
    if module is None:
        raise AttributeError(f"module 'platfone_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    _publish(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The names loaded on use too, for completion in a shell or a notebook."""
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from ._find import CatalogMatch
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
    from ._models._reports import Report, ReportReason, ReportResult
    from ._offers import Offer
    from ._ratelimit._redis import RedisBackend
    from ._ratelimit._sqlite import SQLiteBackend
    from ._recover import OpenActivation
    from ._sync._facade import Platfone, SyncActivationSession

for _name in __all__:
    if _name not in _LOADED_ON_USE:
        _publish(globals()[_name])
del _name

_configure_logging()
