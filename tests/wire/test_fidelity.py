"""Fidelity: the recorded exchanges in ``tests/fidelity/exchanges.json`` (one per endpoint,
as Platfone's clients send and expect them) replayed against the emulator, and played
back to the SDK, so that a change to the wire format on either side - a renamed field, a
changed type, a lost header, another path - fails."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from platfone_async import (
    AsyncPlatfone,
    MaxPriceExceededError,
    NotFoundError,
    PlatfoneError,
    ReportDeadlinePassedError,
    RetryPolicy,
)
from platfone_async.testing import Offer, PlatfoneEmulator, VirtualClock
from platfone_async.testing._routes import ROUTES

RECORDED = json.loads((Path(__file__).parent / "fidelity" / "exchanges.json").read_text("utf-8"))
NULLABLE: dict[str, str] = RECORDED["nullable"]
EXCHANGES: list[dict[str, Any]] = RECORDED["exchanges"]

_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


def shape(value: Any, key: str | None = None) -> Any:
    """Keys and JSON types, recursively; a documented-nullable field's null is its type."""
    if value is None:
        return NULLABLE.get(key or "", "null")
    for kind, name in _TYPES:
        if isinstance(value, kind):
            return name
    if isinstance(value, list):
        shapes = [shape(item) for item in value]
        return [shapes[0]] if shapes and all(s == shapes[0] for s in shapes) else shapes
    assert isinstance(value, dict), value
    return {name: shape(item, name) for name, item in value.items()}


def _emulator() -> PlatfoneEmulator:
    emulator = PlatfoneEmulator(clock=VirtualClock(), rate_limits=None, success_rate_check=False)
    offer = Offer(price=20, quality=0.8, count=100, retriable=True, cancel_after=120)
    emulator.catalog.set_offers("telegram", "uk", [offer])
    return emulator


async def _given(state: str, emulator: PlatfoneEmulator, http: httpx.AsyncClient) -> str | None:
    """Put the emulator in ``state``; the activation it is about, if any."""
    if state == "nothing":
        return None
    ordered = await http.post("/activation", json={"service_id": "telegram", "country_id": "uk"})
    activation_id: str = ordered.json()["activation_id"]
    if state == "cancelable":
        emulator.advance(121)
    if state in ("sms_received", "expired_with_sms", "reported", "past_report_deadline"):
        emulator.deliver_sms(activation_id, "6363", "Your code is 6363")
    if state == "expired_with_sms":
        emulator.advance(1_201)
    if state == "reported":
        body = {"reason_id": 7, "message": "Test message"}
        assert (
            200 == (await http.post(f"/activation/{activation_id}/report", json=body)).status_code
        )
    if state == "past_report_deadline":
        emulator.advance(86_401)
    return activation_id


def _id(exchange: dict[str, Any]) -> str:
    return f"{exchange['endpoint']}-{exchange['response']['status']}"


@pytest.mark.anyio
@pytest.mark.parametrize("exchange", EXCHANGES, ids=[_id(e) for e in EXCHANGES])
async def test_a_recorded_exchange_replays_against_the_emulator(exchange: dict[str, Any]) -> None:
    """The emulator answers each recorded request with the recorded status, shape, headers."""
    emulator = _emulator()
    request, recorded = exchange["request"], exchange["response"]
    headers = {**request["headers"], "x-api-key": emulator.api_key}
    async with emulator.http_client(headers=headers) as http:
        activation_id = await _given(exchange["given"], emulator, http)
        path = request["path"].replace("{activation_id}", activation_id or "")
        response = await http.request(request["method"], path, json=request.get("json"))
    assert recorded["status"] == response.status_code, response.text
    assert shape(recorded["json"]) == shape(response.json())
    for name in recorded.get("headers", []):
        assert name in response.headers, name


def test_every_endpoint_has_a_recorded_exchange() -> None:
    """A new endpoint in the emulator without a recording fails here."""
    assert {name for _, _, name in ROUTES} == {e["endpoint"] for e in EXCHANGES}


def test_every_recorded_request_carries_the_content_type_of_platfones_clients() -> None:
    """Platfone's clients send Content-Type: application/json on every request."""
    assert [] == [
        _id(e) for e in EXCHANGES if e["request"]["headers"] != {"Content-Type": "application/json"}
    ]


@pytest.mark.parametrize(
    "change",
    ["rename a field", "change a type", "drop a field"],
)
def test_the_comparison_sees_a_changed_wire_format(change: str) -> None:
    """The replay would fail on a renamed, retyped or missing field (the check can fail)."""
    recorded = next(e for e in EXCHANGES if e["endpoint"] == "get_activation")["response"]["json"]
    changed = dict(recorded)
    if change == "rename a field":
        changed["expires_at"] = changed.pop("expire_at")
    elif change == "change a type":
        changed["price"] = "20"
    else:
        del changed["is_retriable"]
    assert shape(recorded) != shape(changed)


# -- the SDK's side: it sends the recorded request and reads the recorded answer -----------

AID = "63f4d0dab040a865d80da08a"


def _sdk_call(client: AsyncPlatfone, exchange: dict[str, Any]) -> Awaitable[object]:
    """The SDK call that makes the exchange's request."""
    body = exchange["request"].get("json") or {}
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "get_balance": client.get_balance,
        "create_activation": lambda: client.create_activation(**body),
        "get_activation": lambda: client.get_activation(AID),
        "retry_activation": lambda: client.retry_activation(AID),
        "cancel_activation": lambda: client.cancel_activation(AID),
        "finalize_activation": lambda: client.finalize_activation(AID),
        "get_activation_history": lambda: client.get_activation_history(page=1, limit=10),
        "get_price": lambda: client.get_price("telegram", "uk"),
        "get_prices_by_country": lambda: client.get_prices_by_country("uk"),
        "get_prices_by_service": lambda: client.get_prices_by_service("telegram"),
        "get_countries": client.get_countries,
        "get_services": client.get_services,
        "get_popular_services": client.get_popular_services,
        "get_report_reasons": lambda: client.get_report_reasons(AID),
        "create_report": lambda: client.create_report(AID, **body),
        "get_report": lambda: client.get_report(AID),
        "get_reports": lambda: client.get_reports(page=1, limit=10),
    }
    return calls[exchange["endpoint"]]()


# The typed error each recorded error answer becomes.
_ERRORS: dict[str, type[PlatfoneError]] = {
    "MaxPriceExceededException": MaxPriceExceededError,
    "NotFoundException": NotFoundError,
    "ReportCreationDeadlinePassed": ReportDeadlinePassedError,
}


@pytest.mark.anyio
@pytest.mark.parametrize("exchange", EXCHANGES, ids=[_id(e) for e in EXCHANGES])
async def test_the_sdk_sends_the_recorded_request_and_reads_the_answer(
    exchange: dict[str, Any],
) -> None:
    """The SDK sends each recorded request and reads its answer (a model or typed error)."""
    recorded = exchange["response"]
    sent: list[httpx.Request] = []

    def play_back(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        headers = dict.fromkeys(recorded.get("headers", []), "etag-1")
        return httpx.Response(recorded["status"], json=recorded["json"], headers=headers)

    http = httpx.AsyncClient(transport=httpx.MockTransport(play_back))
    base = "https://api.example.test/api/v1"
    async with AsyncPlatfone(
        "key", base_url=base, http_client=http, rate_limits=None, retry_policy=RetryPolicy.none()
    ) as client:
        if recorded["status"] == 200:
            result = await _sdk_call(client, exchange)
            # the writes answer {"result": "success"} and return None; reads, a model
            assert (recorded["json"] == {"result": "success"}) == (result is None)
        else:
            with pytest.raises(_ERRORS[recorded["json"]["errorName"]]):
                await _sdk_call(client, exchange)
    await http.aclose()
    request = exchange["request"]
    path, _, query = request["path"].replace("{activation_id}", AID).partition("?")
    assert [(request["method"], "/api/v1" + path, parse_qs(query))] == [
        (r.method, r.url.path, parse_qs(r.url.query.decode())) for r in sent
    ]
    if "json" in request and exchange["endpoint"] != "create_report":
        assert request["json"] == json.loads(sent[0].content)
