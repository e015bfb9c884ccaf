"""``to_dict()`` / ``to_json()``: every public model as the API's own JSON, decoded back
to an equal object."""

from __future__ import annotations

import json
from typing import Any

import pytest

import platfone_async as pf
from platfone_async._convert import decode, decode_page
from tests._support import ACTIVATION, HISTORY_ACTIVATION, PRICE, REPORT

_SERVICE = {
    "service_id": "7eleven",
    "name": "7-Eleven",
    "alt_name": "7-Eleven",
    "has_description": True,
    "has_warning": False,
    "prohibited": None,
}
_COUNTRY = {"country_id": "uk", "name": "United Kingdom", "alt_name": None, "codes": ["44"]}
_PRICE_ONLY = {"min": 210, "max": 510, "suggested": 310}

# The API's documented bodies, each with every field the model has.
BODIES: list[tuple[type[Any], dict[str, Any]]] = [
    (pf.Activation, ACTIVATION),
    (pf.Activation, HISTORY_ACTIVATION),
    (pf.Activation, dict(ACTIVATION, sms_status="smsDelayed", report_status="inReview")),
    (pf.Balance, {"total": 2301, "reserved": 210}),
    (pf.Country, _COUNTRY),
    (pf.Service, _SERVICE),
    (pf.Price, _PRICE_ONLY),
    (pf.Quality, {"avg": 0.3}),
    (pf.PriceInfo, PRICE),
    (pf.ServicePrice, dict(PRICE, service_id="telegram")),
    (pf.CountryPrice, dict(PRICE, country_id="uk")),
    (pf.CountryPrices, {"country_id": "uk", "services": [dict(PRICE, service_id="telegram")]}),
    (pf.ServicePrices, {"service_id": "telegram", "countries": [dict(PRICE, country_id="uk")]}),
    (pf.ReportReason, {"reason_id": 1, "reason_name": "No SMS", "evidence_required": True}),
    (pf.ReportResult, {"status": "declined", "decline_id": 2}),
    (pf.Report, dict(REPORT, evidence_url="https://example.test/evidence/1")),
]


def _decode(cls: type[Any], data: object) -> Any:
    return decode(data, cls, status_code=200, text=json.dumps(data))


@pytest.mark.parametrize(("cls", "body"), BODIES, ids=lambda v: getattr(v, "__name__", ""))
def test_to_dict_is_the_api_body_and_decodes_back(cls: type[Any], body: dict[str, Any]) -> None:
    """A model's ``to_dict()`` is the body it was decoded from, and decodes to an equal model."""
    model = _decode(cls, body)
    assert body == model.to_dict()
    assert model == _decode(cls, model.to_dict())
    assert model == _decode(cls, json.loads(model.to_json()))


def test_to_json_indents_and_keeps_non_ascii() -> None:
    """``to_json(indent=2)`` is pretty-printed JSON, and text stays as written (no escapes)."""
    country = _decode(pf.Country, dict(_COUNTRY, name="Côte d'Ivoire"))
    text = country.to_json(indent=2)
    assert "Côte d'Ivoire" in text
    assert '\n  "country_id": "uk",' in text


def test_a_page_is_items_and_its_position() -> None:
    """A ``Page`` is ``{"items": [...], "page", "limit", "pages", "total"}``, as decoded."""
    body = {"items": [HISTORY_ACTIVATION], "page": 1, "limit": 10, "pages": 3, "total": 21}
    page = decode_page(body, pf.Activation, "items", status_code=200, text="")
    assert body == page.to_dict()
    again = decode_page(page.to_dict(), pf.Activation, "items", status_code=200, text="")
    assert page == again
