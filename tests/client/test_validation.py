"""Arguments outside the documented ranges fail before any request leaves."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from platfone_async import AsyncPlatfone, InvalidParameterError
from tests._support import ACTIVATION, PRICE, Server, json_response

pytestmark = pytest.mark.anyio

AID = "64a1c0e8d2a1f9b7e45d3b8e"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
PAGE = {"activations": [], "reports": [], "page": 1, "limit": 1, "pages": 1, "total": 0}
REPORT_OK = {"status": "accepted", "decline_id": None}

Call = Callable[[AsyncPlatfone], Awaitable[Any]]

# (parameter, accepted edge call, rejected call, reply for the accepted call)
RULES: list[tuple[str, Call, Call, Any]] = [
    (
        "service_id",
        lambda c: c.get_price("a" * 30, "us"),
        lambda c: c.get_price("a" * 31, "us"),
        PRICE,
    ),
    ("service_id", lambda c: c.get_price("7eleven", "us"), lambda c: c.get_price("", "us"), PRICE),
    ("service_id", lambda c: c.get_price("a", "us"), lambda c: c.get_price("-abc", "us"), PRICE),
    (
        "service_id",
        lambda c: c.get_price("mail.ru", "us"),
        lambda c: c.get_price("abc-", "us"),
        PRICE,
    ),
    (
        "service_id",
        lambda c: c.get_price("a_b-c.d", "us"),
        lambda c: c.get_price("a/b", "us"),
        PRICE,
    ),
    ("country_id", lambda c: c.get_price("x", "us"), lambda c: c.get_price("x", "u"), PRICE),
    (
        "country_id",
        lambda c: c.get_price("x", "a" * 9),
        lambda c: c.get_price("x", "a" * 10),
        PRICE,
    ),
    ("country_id", lambda c: c.get_price("x", "us_v"), lambda c: c.get_price("x", "_us"), PRICE),
    ("country_id", lambda c: c.get_price("x", "us-v"), lambda c: c.get_price("x", "u s"), PRICE),
    (
        "max_price",
        lambda c: c.create_activation("x", "us", max_price=1),
        lambda c: c.create_activation("x", "us", max_price=0),
        ACTIVATION,
    ),
    (
        "max_price",
        lambda c: c.create_activation("x", "us", max_price=10_000),
        lambda c: c.create_activation("x", "us", max_price=10_001),
        ACTIVATION,
    ),
    (
        "max_price",
        lambda c: c.create_activation("x", "us", max_price=5),
        lambda c: c.create_activation("x", "us", max_price=5.5),  # type: ignore[arg-type]
        ACTIVATION,
    ),
    (
        "quality_factor",
        lambda c: c.create_activation("x", "us", quality_factor=0),
        lambda c: c.create_activation("x", "us", quality_factor=-1),
        ACTIVATION,
    ),
    (
        "quality_factor",
        lambda c: c.create_activation("x", "us", quality_factor=100),
        lambda c: c.create_activation("x", "us", quality_factor=100.5),
        ACTIVATION,
    ),
    (
        "order_id",
        lambda c: c.create_activation("x", "us", order_id="o"),
        lambda c: c.create_activation("x", "us", order_id=""),
        ACTIVATION,
    ),
    (
        "limit",
        lambda c: c.get_activation_history(limit=50),
        lambda c: c.get_activation_history(limit=51),
        PAGE,
    ),
    (
        "limit",
        lambda c: c.get_activation_history(limit=1),
        lambda c: c.get_activation_history(limit=0),
        PAGE,
    ),
    ("limit", lambda c: c.get_reports(limit=100), lambda c: c.get_reports(limit=101), PAGE),
    ("page", lambda c: c.get_reports(page=1), lambda c: c.get_reports(page=0), PAGE),
    (
        "page",
        lambda c: c.get_activation_history(page=1),
        lambda c: c.get_activation_history(page=True),  # bools are not page numbers
        PAGE,
    ),
    ("reason_id", lambda c: c.create_report(AID, 1), lambda c: c.create_report(AID, 0), REPORT_OK),
    (
        "message",
        lambda c: c.create_report(AID, 1, message="m" * 1000),
        lambda c: c.create_report(AID, 1, message="m" * 1001),
        REPORT_OK,
    ),
    (
        "evidence",
        lambda c: c.create_report(AID, 1, evidence=PNG + b"\x00" * (5 * 1024 * 1024 - len(PNG))),
        lambda c: c.create_report(AID, 1, evidence=PNG + b"\x00" * (5 * 1024 * 1024)),
        REPORT_OK,
    ),
    (
        "evidence",
        lambda c: c.create_report(AID, 1, evidence=PNG),
        lambda c: c.create_report(AID, 1, evidence=b"GIF89a not allowed"),
        REPORT_OK,
    ),
    (
        "evidence",
        lambda c: c.create_report(AID, 1, evidence=io.BytesIO(b"%PDF-1.4")),
        lambda c: c.create_report(AID, 1, evidence=io.StringIO("text")),  # type: ignore[arg-type]
        REPORT_OK,
    ),
    ("activation_id", lambda c: c.get_activation(AID), lambda c: c.get_activation(""), ACTIVATION),
    (
        "activation_id",
        lambda c: c.get_activation("abc-123_x"),
        lambda c: c.get_activation("../user/balance"),
        ACTIVATION,
    ),
    (
        "activation_id",
        lambda c: c.finalize_activation(AID),
        lambda c: c.finalize_activation(123),  # type: ignore[arg-type]
        {"result": "success"},
    ),
    (
        "limit",
        lambda c: _drain(c.iter_reports(limit=100)),
        lambda c: _drain(c.iter_reports(limit=0)),
        PAGE,
    ),
]


async def _drain(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


@pytest.mark.parametrize(("parameter", "accepted", "rejected", "reply"), RULES)
async def test_rule_edges(parameter: str, accepted: Call, rejected: Call, reply: Any) -> None:
    """The edge value is sent; the value past it raises naming the parameter and sends nothing."""
    server = Server(default=json_response(200, reply))
    async with server.client() as client:
        with pytest.raises(InvalidParameterError) as caught:
            await rejected(client)
        assert [] == server.requests
        await accepted(client)
    assert parameter == caught.value.parameter
    assert parameter in str(caught.value)
    assert 1 == len(server.requests)


async def test_evidence_path_with_wrong_extension(tmp_path: Path) -> None:
    """A path whose extension is not an allowed type is refused before sending."""
    path = tmp_path / "proof.txt"
    path.write_bytes(PNG)
    server = Server()
    async with server.client() as client:
        with pytest.raises(InvalidParameterError, match="jpg, png, webp, zip, pdf or mp4"):
            await client.create_report(AID, 1, evidence=path)
    assert [] == server.requests


async def test_evidence_missing_file(tmp_path: Path) -> None:
    """A path that does not exist is a clear InvalidParameterError, not an OSError."""
    server = Server()
    async with server.client() as client:
        with pytest.raises(InvalidParameterError, match="cannot read"):
            await client.create_report(AID, 1, evidence=tmp_path / "missing.png")
    assert [] == server.requests


async def test_invalid_parameter_is_a_value_error() -> None:
    """InvalidParameterError can be caught as ValueError and its message states the rule."""
    server = Server()
    async with server.client() as client:
        with pytest.raises(ValueError, match="between 1 and 10000"):
            await client.create_activation("x", "us", max_price=0)
