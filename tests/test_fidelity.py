"""Fidelity: the recorded exchanges in ``tests/fidelity/exchanges.json`` (one per endpoint,
as Platfone's clients send and expect them) replayed against the emulator, so that a
change to the wire format - a renamed field, a changed type, a lost header - fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

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
    """The emulator answers the recorded request with the recorded status, the recorded
    shape of body, and the recorded headers."""
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
