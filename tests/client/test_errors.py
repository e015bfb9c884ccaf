"""Error responses map to the right exception, by errorName first and status second."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

import platfone_async as pf
from tests._support import Server, json_response

pytestmark = pytest.mark.anyio


def _error(name: str | None, message: str = "boom") -> dict[str, str]:
    body = {"errorMessage": message}
    if name is not None:
        body["errorName"] = name
    return body


# (status, body, expected class)
MAPPING: list[tuple[int, object, type[pf.APIError]]] = [
    (401, _error("UnauthorizedException"), pf.AuthenticationError),
    (402, _error("PaymentRequiredException"), pf.InsufficientBalanceError),
    (403, _error("EmailNotVerifiedException"), pf.PermissionDeniedError),
    (404, _error("NoNumbersAvailableException"), pf.NoNumbersAvailableError),
    (400, _error("NoNumbersAvailableException"), pf.NoNumbersAvailableError),
    (409, _error("MaxPriceExceededException"), pf.MaxPriceExceededError),
    (429, _error("TooManyRequestsException"), pf.RateLimitError),
    (429, _error("TooManyActivationsException"), pf.ActiveActivationsLimitError),
    (429, _error("LowSuccessRateException"), pf.AccountBlockedError),
    # the name wins over the status
    (400, _error("UnauthorizedException"), pf.AuthenticationError),
    # unknown or missing names fall back to the status
    (400, _error("SomethingNewException"), pf.BadRequestError),
    (422, _error(None), pf.BadRequestError),
    (401, _error(None), pf.AuthenticationError),
    (402, _error(None), pf.InsufficientBalanceError),
    (403, _error(None), pf.PermissionDeniedError),
    (404, _error(None), pf.NotFoundError),
    (409, _error(None), pf.ConflictError),
    (429, _error(None), pf.RateLimitError),
    (500, _error(None), pf.ServerError),
    (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", pf.ServerError),
    (503, "", pf.ServerError),
    (418, "I'm a teapot", pf.APIError),
    (404, "", pf.NotFoundError),
    (401, "<html>nope</html>", pf.AuthenticationError),
]


@pytest.mark.parametrize(("status", "body", "expected"), MAPPING)
async def test_error_mapping(status: int, body: object, expected: type[pf.APIError]) -> None:
    """Each documented errorName and status raises its class, whatever the body's shape."""
    if isinstance(body, str):
        reply = httpx.Response(status, content=body.encode())
    else:
        reply = json_response(status, body)
    server = Server(default=reply)
    async with server.client(max_retries=0, rate_limit_wait=0) as client:
        with pytest.raises(pf.APIError) as caught:
            await client.get_balance()
    assert expected is type(caught.value)
    assert status == caught.value.status_code
    sent = body if isinstance(body, str) else json.dumps(body)
    assert sent == caught.value.body  # the raw body, as received
    if isinstance(body, dict):
        assert body.get("errorName") == caught.value.error_name


async def test_max_price_exceeded_fields() -> None:
    """A 409 MaxPriceExceeded carries suggestedPrice and the orderId continuation token."""
    body = {
        "errorName": "MaxPriceExceededException",
        "errorMessage": "price too low",
        "suggestedPrice": 120,
        "orderId": "682b17b958bf608ceae5ec3c",
    }
    server = Server(json_response(409, body))
    async with server.client() as client:
        with pytest.raises(pf.MaxPriceExceededError) as caught:
            await client.create_activation("netflix", "us", max_price=90)
    assert 120 == caught.value.suggested_price
    assert "682b17b958bf608ceae5ec3c" == caught.value.order_id
    assert "price too low" == caught.value.message
    assert isinstance(caught.value, pf.ConflictError)


async def test_max_price_exceeded_accepts_snake_case_order_id() -> None:
    """``order_id`` is read as well as ``orderId``."""
    body = {"errorName": "MaxPriceExceededException", "suggestedPrice": "95", "order_id": "o-1"}
    server = Server(json_response(409, body))
    async with server.client() as client:
        with pytest.raises(pf.MaxPriceExceededError) as caught:
            await client.create_activation("netflix", "us", max_price=90)
    assert (95, "o-1") == (caught.value.suggested_price, caught.value.order_id)


async def test_rate_limit_reset_at_from_header() -> None:
    """RateLimitError.reset_at is the x-ratelimit-reset Unix time as an aware datetime."""
    reply = json_response(
        429, _error("TooManyRequestsException"), headers={"x-ratelimit-reset": "1729088539"}
    )
    server = Server(default=reply)  # a reset in the past is retried, then raised
    async with server.client(max_retries=0, rate_limits=None) as client:
        with pytest.raises(pf.RateLimitError) as caught:
            await client.get_balance()
    assert dt.datetime(2024, 10, 16, 14, 22, 19, tzinfo=dt.timezone.utc) == caught.value.reset_at
    assert "2024-10-16T14:22:19+00:00" in str(caught.value)


async def test_error_body_in_a_200_raises_the_named_error() -> None:
    """A 200 whose body is an error object raises that error, not a decode error."""
    server = Server(json_response(200, _error("UnauthorizedException", "bad key")))
    async with server.client() as client:
        with pytest.raises(pf.AuthenticationError, match="bad key"):
            await client.get_balance()


async def test_html_error_message_is_a_short_snippet() -> None:
    """An HTML error page's text becomes a short message; the whole body stays in .body."""
    page = "<html><body>" + "x" * 5000 + "</body></html>"
    server = Server(default=httpx.Response(502, content=page.encode()))
    async with server.client(max_retries=0) as client:
        with pytest.raises(pf.ServerError) as caught:
            await client.get_balance()
    assert len(caught.value.message) < 300
    assert page == caught.value.body


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"<html>ok</html>", b'{"total": "lots", "reserved": 0}', b"[]"],
)
async def test_bad_success_body_is_a_decode_error(body: bytes) -> None:
    """A 200 that is not JSON or does not fit the model raises ResponseDecodeError with the body."""
    server = Server(httpx.Response(200, content=body))
    async with server.client(retry_policy=pf.RetryPolicy.none()) as client:
        with pytest.raises(pf.ResponseDecodeError) as caught:
            await client.get_balance()
    assert body.decode() == caught.value.body
    assert 200 == caught.value.status_code


async def test_decode_error_names_the_bad_field() -> None:
    """The decode error's path points at the first field that does not fit."""
    server = Server(json_response(200, {"total": 1, "reserved": {"x": 1}}))
    async with server.client() as client:
        with pytest.raises(pf.ResponseDecodeError) as caught:
            await client.get_balance()
    assert "$.reserved" == caught.value.path


def test_hierarchy() -> None:
    """The tree matches the documented one: the classes a user catches contain the specific ones."""
    assert issubclass(pf.MaxPriceExceededError, pf.ConflictError)
    assert issubclass(pf.AccountBlockedError, pf.RateLimitError)
    assert issubclass(pf.ActiveActivationsLimitError, pf.RateLimitError)
    assert issubclass(pf.APITimeoutError, pf.APIConnectionError)
    assert issubclass(pf.APITimeoutError, TimeoutError)
    assert issubclass(pf.WaitTimeoutError, TimeoutError)
    assert issubclass(pf.InvalidParameterError, ValueError)
    for cls in (
        pf.APIError,
        pf.APIConnectionError,
        pf.ResponseDecodeError,
        pf.InvalidParameterError,
    ):
        assert issubclass(cls, pf.PlatfoneError)
