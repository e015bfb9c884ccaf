"""Wire details seen in Platfone's own clients (its MCP server and web app), on the emulator
and in the SDK: "Order not found", ``ReportCreationDeadlinePassed``, a 403 on hold, and
requests with or without ``Content-Type: application/json``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from platfone_async import (
    AsyncPlatfone,
    ConflictError,
    MaxPriceExceededError,
    NotFoundError,
    PermissionDeniedError,
    ReportDeadlinePassedError,
)
from platfone_async._errors import make_api_error
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, VirtualClock
from tests._support import Server, json_response

pytestmark = pytest.mark.anyio

ORDER_NOT_FOUND = {"errorName": "NotFoundException", "errorMessage": "Order not found"}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> PlatfoneEmulator:
    emulator = PlatfoneEmulator(clock=clock, rate_limits=None, success_rate_check=False)
    emulator.catalog.set_offers("google", "uk", [Offer(150, 0.8, 1_000)])
    return emulator


def _quiet(emulator: PlatfoneEmulator, **kwargs: Any) -> AsyncPlatfone:
    return emulator.client(rate_limits=None, max_retries=0, success_rate_guard="off", **kwargs)


async def _order_409(http: httpx.AsyncClient, key: str) -> str:
    response = await http.post(
        "/activation",
        json={"service_id": "google", "country_id": "uk", "max_price": 100},
        headers={"x-api-key": key},
    )
    assert 409 == response.status_code
    order_id: str = response.json()["orderId"]
    return order_id


# -- "Order not found" ---------------------------------------------------------------------


@pytest.mark.parametrize("token", ["unknown", "used", "stale"])
async def test_the_emulator_answers_404_order_not_found(
    emulator: PlatfoneEmulator, token: str
) -> None:
    """An unknown, used-up or timed-out order_id is a 404 "Order not found", as Platfone's."""
    emulator_key = emulator.api_key
    async with emulator.http_client() as http:
        order_id = "f" * 24 if token == "unknown" else await _order_409(http, emulator_key)
        body = {"service_id": "google", "country_id": "uk", "max_price": 150}
        if token == "used":
            used = await http.post(
                "/activation",
                json={**body, "order_id": order_id},
                headers={"x-api-key": emulator_key},
            )
            assert 200 == used.status_code
        if token == "stale":
            emulator.advance(601)  # order_token_lifetime is 600 s by default
        response = await http.post(
            "/activation", json={**body, "order_id": order_id}, headers={"x-api-key": emulator_key}
        )
    assert (404, ORDER_NOT_FOUND) == (response.status_code, response.json())
    assert (1 if token == "used" else 0) == emulator.orders_placed()


def test_the_sdk_says_what_order_not_found_means() -> None:
    """The 404 becomes a NotFoundError whose message says the order_id went stale."""
    error = make_api_error(404, json.dumps(ORDER_NOT_FOUND), {})
    assert NotFoundError is type(error)
    assert (
        "Order not found: the order_id (a 409's continuation token) is unknown or has "
        "gone stale; order again without it" == error.message
    )


async def test_a_session_orders_afresh_once_when_its_token_went_stale(
    clock: VirtualClock,
) -> None:
    """409 at 150, the token is stale by the time it is used: one fresh order at 150."""
    emulator = PlatfoneEmulator(
        clock=clock, rate_limits=None, success_rate_check=False, order_token_lifetime=0.5
    )
    emulator.catalog.set_offers("google", "uk", [Offer(150, 0.8, 1_000)])
    emulator.inject_fault("create_activation", Fault(delay=1.0), times=2)  # time passes
    sent: list[dict[str, Any]] = []

    async def on_request(request: httpx.Request) -> None:
        if request.method == "POST":
            sent.append(json.loads(request.content))

    http = emulator.http_client(event_hooks={"request": [on_request]})
    client = AsyncPlatfone(
        emulator.api_key, base_url=emulator.base_url, http_client=http, clock=clock
    )
    async with (
        clock.autojump(),
        client,
        client.activation("google", "uk", max_price=100, price_ceiling=200) as session,
    ):
        pass
    await http.aclose()
    first, second, third = sent
    assert {"service_id": "google", "country_id": "uk", "max_price": 100} == first
    assert (150, True) == (second["max_price"], bool(second.get("order_id")))
    assert {"service_id": "google", "country_id": "uk", "max_price": 150} == third
    assert (150, 1) == (session.activation.price, emulator.orders_placed())


async def test_a_session_drops_a_stale_token_only_once(clock: VirtualClock) -> None:
    """A second "Order not found" after ordering afresh is raised: no third attempt."""
    conflict = {
        "errorName": "MaxPriceExceededException",
        "errorMessage": "too low",
        "suggestedPrice": 150,
        "orderId": "tok-1",
    }
    server = Server(
        json_response(409, conflict),
        json_response(404, ORDER_NOT_FOUND),
        json_response(409, {**conflict, "orderId": "tok-2"}),
        json_response(404, ORDER_NOT_FOUND),
    )
    async with clock.autojump(), server.client(clock, rate_limits=None) as client:
        with pytest.raises(NotFoundError, match="Order not found"):
            async with client.activation("google", "uk", max_price=100, price_ceiling=200):
                pass  # pragma: no cover
    bodies = [json.loads(r.content) for r in server.requests]
    assert [None, "tok-1", None, "tok-2"] == [b.get("order_id") for b in bodies]
    assert [100, 150, 150, 150] == [b["max_price"] for b in bodies]


async def test_without_a_ceiling_a_stale_token_is_raised(emulator: PlatfoneEmulator) -> None:
    """create_activation itself never drops the order_id: the caller decides."""
    async with _quiet(emulator) as client:
        with pytest.raises(MaxPriceExceededError) as conflict:
            await client.create_activation("google", "uk", max_price=100)
        emulator.advance(601)
        with pytest.raises(NotFoundError, match="Order not found"):
            await client.create_activation(
                "google", "uk", max_price=150, order_id=conflict.value.order_id
            )
    assert 0 == emulator.orders_placed()


# -- the report deadline -------------------------------------------------------------------


async def test_a_report_after_its_deadline_is_report_deadline_passed(
    emulator: PlatfoneEmulator,
) -> None:
    """Past the deadline: 409 ReportCreationDeadlinePassed, ReportDeadlinePassedError."""
    async with _quiet(emulator) as client:
        activation = await client.create_activation("google", "uk")
        emulator.deliver_sms(activation.activation_id, "1234")
        assert [] != await client.get_report_reasons(activation)
        emulator.advance(86_401)
        reasons = await client.get_report_reasons(activation)
        with pytest.raises(ReportDeadlinePassedError) as caught:
            await client.create_report(activation, 2, message="too late")
    assert [] == reasons
    assert isinstance(caught.value, ConflictError)
    assert (409, "ReportCreationDeadlinePassed") == (
        caught.value.status_code,
        caught.value.error_name,
    )
    assert emulator.report(activation.activation_id) is None


async def test_a_report_within_its_deadline_is_accepted(emulator: PlatfoneEmulator) -> None:
    """One second before the deadline the same report goes through."""
    emulator_deadline = 86_400
    async with _quiet(emulator) as client:
        activation = await client.create_activation("google", "uk")
        emulator.deliver_sms(activation.activation_id, "1234")
        emulator.advance(emulator_deadline - 1)
        result = await client.create_report(activation, 7, message="in time")
    assert "accepted" == result.status


# -- 403: on hold --------------------------------------------------------------------------


async def test_an_account_on_hold_gets_403_and_the_sdk_says_on_hold(
    emulator: PlatfoneEmulator,
) -> None:
    """On hold, every request is a 403 whose SDK message says so; lifting the hold undoes it."""
    emulator.set_on_hold()
    async with _quiet(emulator) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            await client.get_balance()
        emulator.set_on_hold(False)
        balance = await client.get_balance()
    assert 403 == caught.value.status_code
    assert str(caught.value).startswith(
        "403 ForbiddenException: the account is on hold (contact Platfone support)"
    )
    assert 10_000 == balance.total


def test_email_not_verified_is_not_called_on_hold() -> None:
    """Only a 403 other than EmailNotVerifiedException is read as a hold."""
    body = {"errorName": "EmailNotVerifiedException", "errorMessage": "verify your e-mail"}
    error = make_api_error(403, json.dumps(body), {})
    other = make_api_error(403, json.dumps({"errorMessage": "forbidden"}), {})
    assert (PermissionDeniedError, "verify your e-mail") == (type(error), error.message)
    assert "the account is on hold (contact Platfone support): forbidden" == other.message


# -- Content-Type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "application/json; charset=utf-8"]
)
async def test_the_emulator_accepts_requests_with_or_without_content_type(
    emulator: PlatfoneEmulator, content_type: str | None
) -> None:
    """Requests with or without Content-Type: application/json (GET and PUT too) are taken."""
    headers = {"x-api-key": emulator.api_key}
    if content_type is not None:
        headers["content-type"] = content_type
    body = json.dumps({"service_id": "google", "country_id": "uk"}).encode()
    async with emulator.http_client(headers=headers) as http:
        ordered = await http.post("/activation", content=body)
        aid = ordered.json()["activation_id"]
        got = await http.get(f"/activation/{aid}")
        emulator.deliver_sms(aid, "1234")
        finalized = await http.put(f"/activation/{aid}/finalize")
        balance = await http.get("/user/balance")
    assert [200, 200, 200, 200] == [r.status_code for r in (ordered, got, finalized, balance)]
    assert "finalized" == emulator.activation(aid)["activation_status"]


async def test_the_sdk_sends_content_type_only_with_a_json_body(clock: VirtualClock) -> None:
    """The SDK's requests stay as they are: a GET carries no Content-Type, an order JSON."""
    from tests._support import ACTIVATION

    server = Server(json_response(200, {"total": 1, "reserved": 0}), json_response(200, ACTIVATION))
    async with server.client(clock, rate_limits=None) as client:
        await client.get_balance()
        await client.create_activation("netflix", "us")
    get, post = server.requests
    assert (None, "application/json") == (
        get.headers.get("content-type"),
        post.headers.get("content-type"),
    )
