"""Every exception the SDK raises, in one tree.

    PlatfoneError
    ├── APIError                     the server answered with an error
    │   ├── BadRequestError          400, 422
    │   ├── AuthenticationError      401  UnauthorizedException
    │   ├── InsufficientBalanceError 402  PaymentRequiredException
    │   ├── PermissionDeniedError    403  EmailNotVerifiedException; any other 403: on hold
    │   ├── NotFoundError            404  (also "Order not found": a stale ``order_id``)
    │   ├── NoNumbersAvailableError       NoNumbersAvailableException
    │   ├── ConflictError            409
    │   │   ├── MaxPriceExceededError     MaxPriceExceededException (.suggested_price, .order_id)
    │   │   └── ReportDeadlinePassedError ReportCreationDeadlinePassed (too late to report)
    │   ├── RateLimitError           429  TooManyRequestsException (.reset_at)
    │   │   ├── ActiveActivationsLimitError  TooManyActivationsException (the 20 active)
    │   │   └── AccountBlockedError          LowSuccessRateException (the 24 h block)
    │   └── ServerError              5xx
    ├── APIConnectionError           no usable answer: connect/read/write failure
    │   └── APITimeoutError          ... because a timeout passed (also a TimeoutError)
    ├── ResponseDecodeError          a 2xx body that does not parse or fit the model
    ├── InvalidParameterError        an argument outside the documented range (also a ValueError)
    ├── WebhookVerificationError     a webhook delivery failed its signature/timestamp checks
    ├── WebhookPayloadError          a webhook body that is not a valid event (also a ValueError)
    ├── SuccessRateGuardError        strict mode refused an order that risks the 24 h block
    ├── SpendLimitError              an order's price would go over the spend limit: not sent
    ├── RateLimitBackendError        the shared limits backend (Redis) failed: nothing was sent
    ├── OrderOutcomeUnknownError     an order may or may not have been placed
    ├── ActivationEndedError         wait_for_sms: the activation ended without an SMS
    └── WaitTimeoutError             wait_for_sms: the timeout passed first (also a TimeoutError)

An :class:`APIError` is chosen by the body's ``errorName`` first and the HTTP status
second, so a proxy's HTML 502 is still a :class:`ServerError`. No message, repr or
attribute of any of these ever holds the API key. A body kept on an exception (``.body``)
is cut to :data:`MAX_BODY_KEPT` characters (``.body_truncated`` says so), so a hostile or
runaway response cannot pin megabytes in a log or a traceback.

The whole tree lives in this one module (about 480 lines) on purpose: a reader sees every
``except`` they could write in one place, as in httpx's ``_exceptions``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from ._models import Activation

if TYPE_CHECKING:
    from ._spend import SpendLimit

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccountBlockedError",
    "ActivationEndedError",
    "ActiveActivationsLimitError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InsufficientBalanceError",
    "InvalidParameterError",
    "MaxPriceExceededError",
    "NoNumbersAvailableError",
    "NotFoundError",
    "OrderOutcomeUnknownError",
    "PermissionDeniedError",
    "PlatfoneError",
    "RateLimitError",
    "ReportDeadlinePassedError",
    "ResponseDecodeError",
    "ServerError",
    "SpendLimitError",
    "SuccessRateGuardError",
    "RateLimitBackendError",
    "WaitTimeoutError",
    "WebhookPayloadError",
    "WebhookVerificationError",
    "MAX_BODY_KEPT",
    "make_api_error",
]

_BODY_IN_MESSAGE = 200  # characters of an unparsed body quoted in a message

#: At most this many characters of a response body are kept on an exception's ``.body``.
MAX_BODY_KEPT = 64 * 1024


def _kept(body: str) -> tuple[str, bool]:
    """The body as an exception keeps it, and whether it was cut."""
    if len(body) <= MAX_BODY_KEPT:
        return body, False
    return body[:MAX_BODY_KEPT], True


class PlatfoneError(Exception):
    """The root of every exception this SDK raises."""


class _KeepsResponse:
    """The response an error was built from, as the SDK keeps it."""

    #: The response (body read), with the API key masked out of it and out of its
    #: request's headers; None when the error was not built from a response.
    response: httpx.Response | None = None

    @property
    def headers(self) -> httpx.Headers:
        """The response's headers (the key masked out); empty without a response."""
        return self.response.headers if self.response is not None else httpx.Headers()


class APIError(_KeepsResponse, PlatfoneError):
    """The server answered with an error status (or a redirect, which is never followed).

    :attr:`response` and :attr:`headers` hold what the server sent, the key masked out.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_name: str | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_name = error_name
        #: The raw response body, as text (its first ``MAX_BODY_KEPT`` characters).
        self.body, self.body_truncated = _kept(body)

    def __str__(self) -> str:
        name = f" {self.error_name}" if self.error_name else ""
        return f"{self.status_code}{name}: {self.message}"


class BadRequestError(APIError):
    """400 or 422: the server rejected the request's parameters."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong, or for the other environment."""


class InsufficientBalanceError(APIError):
    """402: the available balance does not cover the price."""


class PermissionDeniedError(APIError):
    """403: the account may not do this.

    ``EmailNotVerifiedException``: its e-mail is not verified yet. Any other 403 means
    the account is on hold (Platfone's own clients read it so), and the message says so.
    """


class NotFoundError(APIError):
    """404: no such activation, report, service or country - or order.

    A ``create_activation`` whose ``order_id`` (a 409's continuation token) is unknown
    or has gone stale gets "Order not found": order again without the ``order_id``.
    """


class NoNumbersAvailableError(APIError):
    """No number is in stock for this service and country right now."""


class ConflictError(APIError):
    """409: the request conflicts with the activation's current state."""


class MaxPriceExceededError(ConflictError):
    """409: no number within ``max_price``; retry with the suggested price and order id."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_name: str | None = None,
        body: str = "",
        suggested_price: int | None = None,
        order_id: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_name=error_name, body=body)
        #: The nearest available price in USD cents.
        self.suggested_price = suggested_price
        #: The continuation token to pass back as ``order_id``.
        self.order_id = order_id

    def __str__(self) -> str:
        return (
            f"{super().__str__()} (suggested_price={self.suggested_price!r}, "
            f"order_id={self.order_id!r})"
        )


class ReportDeadlinePassedError(ConflictError):
    """409 ``ReportCreationDeadlinePassed``: the activation can no longer be reported."""


class RateLimitError(APIError):
    """429: too many requests; ``reset_at`` says when the server accepts them again."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_name: str | None = None,
        body: str = "",
        reset_at: dt.datetime | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_name=error_name, body=body)
        #: When the limit resets (aware UTC), from ``x-ratelimit-reset``; None if not sent.
        self.reset_at = reset_at

    def __str__(self) -> str:
        if self.reset_at is None:
            return super().__str__()
        return f"{super().__str__()} (resets at {self.reset_at.isoformat()})"


class ActiveActivationsLimitError(RateLimitError):
    """429: the account already holds the maximum number of active activations."""


class AccountBlockedError(RateLimitError):
    """429: the account is blocked (low SMS success rate); ``reset_at`` is the unblock time."""


class ServerError(APIError):
    """5xx: the server or a proxy in front of it failed."""


class APIConnectionError(PlatfoneError):
    """No usable answer: the connection could not be made or broke off."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """A connect, read, write or pool timeout passed."""


class ResponseDecodeError(_KeepsResponse, PlatfoneError):
    """A successful response whose body does not parse as JSON or fit the expected model.

    Also raised for a body larger than the client's ``max_response_bytes`` (the read
    stops there), too deeply nested to parse, or not UTF-8. :attr:`response` and
    :attr:`headers` hold what the server sent, the key masked out.

    An SMS code the server did send is never lost to a broken body: when the body (even
    truncated, even not JSON) shows an ``sms_code``, it is kept in :attr:`sms_code`, with
    :attr:`activation_id` and :attr:`sms_text` when they can be read too (best effort).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str,
        path: str | None = None,
        data: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        #: The raw response body, as text (its first ``MAX_BODY_KEPT`` characters).
        self.body, self.body_truncated = _kept(body)
        #: Where in the JSON the body stopped fitting, e.g. ``$.activations[3].price``.
        self.path = path
        salvaged = salvage_activation(data, body)
        #: The activation the body was about, if it names one (best effort).
        self.activation_id: str | None = salvaged.get("activation_id")
        #: An SMS code found in the body (best effort), so that it is never lost.
        self.sms_code: str | None = salvaged.get("sms_code")
        #: The SMS text found in the body (best effort).
        self.sms_text: str | None = salvaged.get("sms_text")


_SALVAGED = ("activation_id", "sms_code", "sms_text")


# A complete "name": "string" (or "name": number) pair, wherever it stands in a body
# that may be cut short or not be JSON at all: a value cut mid-string does not match.
_PAIRS = {
    name: re.compile(rf'"{name}"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(-?\d+)(?=\s*[,}}\]]))')
    for name in _SALVAGED
}


_SALVAGE_SCAN = 1024 * 1024  # characters of a body searched for the pairs


def salvage_activation(data: object, body: str) -> dict[str, str]:
    """``activation_id``, ``sms_code`` and ``sms_text`` read from a body that failed to
    decode: from its parsed JSON (``data``) when it is an object, else from its text
    when the body names at most one activation."""
    found: dict[str, str] = {}
    if isinstance(data, dict):
        for name in _SALVAGED:
            value = data.get(name)
            if isinstance(value, str) and value:
                found[name] = value
            elif isinstance(value, int) and not isinstance(value, bool):
                found[name] = str(value)
        return found
    if data is not None:
        return found  # parsed, but not one activation: a list holds many codes
    text = body[:_SALVAGE_SCAN]
    if text.count('"activation_id"') > 1:
        return found  # several activations (a page): a code could not be paired safely
    for name, pattern in _PAIRS.items():
        match = pattern.search(text)
        if match is None:
            continue
        raw, number = match.groups()
        if number is not None:
            found[name] = number
            continue
        try:
            value = json.loads(f'"{raw}"')
        except ValueError:
            continue
        if isinstance(value, str) and value:
            found[name] = value
    return found


class InvalidParameterError(PlatfoneError, ValueError):
    """An argument is outside the documented range; no request was sent."""

    def __init__(self, parameter: str, rule: str, value: object) -> None:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(f"invalid {parameter}={shown}: {rule}")
        self.parameter = parameter
        self.rule = rule


class WebhookVerificationError(PlatfoneError):
    """A webhook delivery failed verification; the message says which check failed."""


class WebhookPayloadError(PlatfoneError, ValueError):
    """A webhook body that is not the JSON event the reference describes.

    Raised by ``platfone_async.webhooks.parse_event`` (the ASGI app answers it with 400);
    ``path`` says where the payload stopped fitting, e.g. ``$.data.expire_at``.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class SuccessRateGuardError(PlatfoneError):
    """Strict mode refused an order that would risk the 24 h low-success-rate block."""

    def __init__(self, message: str, *, rate: float, orders: int, floor: float) -> None:
        super().__init__(message)
        self.rate = rate
        self.orders = orders
        self.floor = floor


class SpendLimitError(PlatfoneError):
    """An order refused before it left: its price would take the money reserved or
    billed within the spend limit's period over the limit.

    :attr:`limit` is the :class:`SpendLimit`; :attr:`counted` the cents reserved or
    billed within its period (money released does not count); :attr:`price` what this
    order may cost (its ``max_price``, else the price list's top); :attr:`room_at` when
    enough of the counted money leaves the period for it (aware UTC; None when the price
    alone is over the limit) - sooner if reserved numbers are released meanwhile.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: SpendLimit,
        counted: int,
        price: int,
        room_at: dt.datetime | None,
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.counted = counted
        self.price = price
        self.room_at = room_at


class RateLimitBackendError(PlatfoneError):
    """The shared limits backend (Redis) could not be reached or failed.

    Raised before the request would leave, so nothing was sent: never a silent excess
    over a limit. The Redis error is the ``__cause__``. ``RedisBackend(...,
    on_backend_error="local")`` falls back to in-process limits instead.
    """


class OrderOutcomeUnknownError(PlatfoneError):
    """An order may or may not have been placed, and reconciliation could not tell.

    Raised by ``create_activation`` (and so by ``activation()``) when the order's request
    failed after it may have reached the server and the activation history could not
    settle it. What a caller needs to decide: :attr:`service_id`, :attr:`country_id`, the
    time window the order would have been created in (:attr:`window_start`,
    :attr:`window_end`, aware UTC, on the server's clock as far as the SDK knows it),
    :attr:`candidates` (activations in the history that could be it, when several could)
    and :attr:`last_error` (what made the outcome unknown). Look in the history, or in
    the dashboard, for an activation of that service and country created in that window
    before ordering again; the SDK keeps one activation slot taken for it meanwhile.
    """

    def __init__(
        self,
        message: str,
        *,
        service_id: str,
        country_id: str,
        window_start: dt.datetime,
        window_end: dt.datetime,
        last_error: BaseException | None = None,
        candidates: tuple[Activation, ...] = (),
    ) -> None:
        super().__init__(message)
        self.service_id = service_id
        self.country_id = country_id
        self.window_start = window_start
        self.window_end = window_end
        self.last_error = last_error
        #: Activations that could be this order (empty when none or too many to tell).
        self.candidates = candidates


class ActivationEndedError(PlatfoneError):
    """The activation expired, was cancelled or finalized before an SMS arrived."""

    def __init__(self, message: str, *, activation: Activation) -> None:
        super().__init__(message)
        #: The last state seen.
        self.activation = activation


class WaitTimeoutError(PlatfoneError, TimeoutError):
    """``wait_for_sms`` gave up: its ``timeout`` passed before an SMS arrived."""

    def __init__(self, message: str, *, activation: Activation | None = None) -> None:
        super().__init__(message)
        #: The last state seen, if any.
        self.activation = activation


# -- mapping a response to an exception -------------------------------------------------

_BY_NAME: Mapping[str, type[APIError]] = {
    "UnauthorizedException": AuthenticationError,
    "PaymentRequiredException": InsufficientBalanceError,
    "EmailNotVerifiedException": PermissionDeniedError,
    "ForbiddenException": PermissionDeniedError,
    "NotFoundException": NotFoundError,
    "NoNumbersAvailableException": NoNumbersAvailableError,
    "MaxPriceExceededException": MaxPriceExceededError,
    "TooManyRequestsException": RateLimitError,
    "TooManyActivationsException": ActiveActivationsLimitError,
    "LowSuccessRateException": AccountBlockedError,
    "BadRequestException": BadRequestError,
    "ValidationException": BadRequestError,
    "ConflictException": ConflictError,
    # Platfone's own clients spell this one without the "Exception" suffix.
    "ReportCreationDeadlinePassed": ReportDeadlinePassedError,
    "ReportCreationDeadlinePassedException": ReportDeadlinePassedError,
}

#: The ``errorMessage`` of a 404 answering an unknown or stale ``order_id``.
ORDER_NOT_FOUND = "Order not found"
_EMAIL_NOT_VERIFIED = "EmailNotVerifiedException"

_BY_STATUS: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def _error_class(status_code: int, error_name: str | None) -> type[APIError]:
    if error_name is not None and error_name in _BY_NAME:
        return _BY_NAME[error_name]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return ServerError
    return APIError


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _reset_at(headers: Mapping[str, str], payload: Mapping[str, Any]) -> dt.datetime | None:
    raw: object = headers.get("x-ratelimit-reset")
    if raw is None:
        raw = payload.get("unblockAt", payload.get("unblock_at", payload.get("resetAt")))
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        return None
    try:
        seconds = float(raw)
        return dt.datetime.fromtimestamp(int(seconds), tz=dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _explained(cls: type[APIError], error_name: str | None, message: str) -> str:
    """The server's message, with what Platfone's own clients read into it."""
    if cls is NotFoundError and message.strip().rstrip(".").lower() == ORDER_NOT_FOUND.lower():
        return (
            f"{ORDER_NOT_FOUND}: the order_id (a 409's continuation token) is unknown or "
            "has gone stale; order again without it"
        )
    if cls is PermissionDeniedError and error_name != _EMAIL_NOT_VERIFIED:
        return f"the account is on hold (contact Platfone support): {message}"
    return message


def make_api_error(status_code: int, text: str, headers: Mapping[str, str]) -> APIError:
    """Build the exception for an error response, whatever its body looks like."""
    payload: Mapping[str, Any] = {}
    try:
        parsed = json.loads(text) if text else None
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        parsed = None
    if isinstance(parsed, dict):
        payload = parsed
    name = payload.get("errorName")
    error_name = name if isinstance(name, str) and name else None
    raw_message = payload.get("errorMessage", payload.get("message"))
    if isinstance(raw_message, str) and raw_message:
        message = raw_message
    elif text and parsed is None:
        snippet = " ".join(text.split())
        message = snippet[:_BODY_IN_MESSAGE] + ("..." if len(snippet) > _BODY_IN_MESSAGE else "")
    else:
        message = "no error message in the response"
    cls = _error_class(status_code, error_name)
    message = _explained(cls, error_name, message)
    common: dict[str, Any] = {"status_code": status_code, "error_name": error_name, "body": text}
    if issubclass(cls, MaxPriceExceededError):
        suggested = _as_int(payload.get("suggestedPrice", payload.get("suggested_price")))
        order_id = payload.get("orderId", payload.get("order_id"))
        return cls(
            message,
            suggested_price=suggested,
            order_id=str(order_id) if isinstance(order_id, (str, int)) else None,
            **common,
        )
    if issubclass(cls, RateLimitError):
        return cls(message, reset_at=_reset_at(headers, payload), **common)
    return cls(message, **common)
