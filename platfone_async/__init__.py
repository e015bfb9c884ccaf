"""platfone-async: the Python SDK for the Platfone Activation API."""

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
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    SuccessRateGuardError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from ._http import RetryPolicy
from ._models import (
    Activation,
    Balance,
    Country,
    CountryPrice,
    CountryPrices,
    Page,
    Price,
    PriceInfo,
    Quality,
    Report,
    ReportReason,
    ReportResult,
    Service,
    ServicePrice,
    ServicePrices,
)
from ._ratelimit import DOCUMENTED_RATE_LIMITS, RateLimit
from ._session import ActivationSession, SessionOutcome
from ._sync import Platfone, SyncActivationSession
from ._version import __version__
from ._webhook_events import WebhookPayloadError

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
    "Clock",
    "ConflictError",
    "Country",
    "CountryPrice",
    "CountryPrices",
    "InsufficientBalanceError",
    "InvalidParameterError",
    "MaxPriceExceededError",
    "NoNumbersAvailableError",
    "NotFoundError",
    "OrderOutcomeUnknownError",
    "Page",
    "PermissionDeniedError",
    "Platfone",
    "PlatfoneError",
    "Price",
    "PriceInfo",
    "Quality",
    "RateLimit",
    "RateLimitError",
    "Report",
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
    "SmsStatus",
    "SuccessRateGuardError",
    "SyncActivationSession",
    "SystemClock",
    "WaitTimeoutError",
    "WebhookEventType",
    "WebhookPayloadError",
    "WebhookVerificationError",
    "__version__",
]

# Reprs, tracebacks and docs show the public path, not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("platfone_async._"):
        _obj.__module__ = "platfone_async"
del _name, _obj
