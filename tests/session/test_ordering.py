"""The session's order: a 409's suggested price followed within the ceiling (three times
at most), a stale continuation token dropped once, prices checked before anything leaves.

A scripted server answers each order; what was sent is read back from its requests.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from platfone_async import (
    AsyncPlatfone,
    InvalidParameterError,
    MaxPriceExceededError,
    NotFoundError,
    SessionOutcome,
)
from tests._support import ACTIVATION, Server, json_response

pytestmark = pytest.mark.anyio

#: The number every order here gets (no cancelable_after: leaving only reads it once).
OPENED = json_response(200, ACTIVATION)


def conflict(suggested: int | None, order_id: str) -> httpx.Response:
    """A 409 MaxPriceExceeded suggesting ``suggested`` cents, with its continuation token."""
    body: dict[str, Any] = {
        "errorName": "MaxPriceExceededException",
        "errorMessage": "price too low",
        "orderId": order_id,
    }
    if suggested is not None:
        body["suggestedPrice"] = suggested
    return json_response(409, body)


STALE = json_response(404, {"errorName": "NotFoundException", "errorMessage": "Order not found"})


def orders_sent(server: Server) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in server.requests if r.method == "POST"]


def client_of(server: Server) -> AsyncPlatfone:
    return server.client(rate_limits=None, max_active_activations=None, max_retries=0)


async def open_and_leave(server: Server, **options: Any) -> SessionOutcome | None:
    """Open a session on ``server`` with ``options`` and leave it at once."""
    async with client_of(server) as client, client.activation("netflix", "us", **options) as s:
        pass
    return s.outcome


def order(max_price: int, order_id: str | None = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"service_id": "netflix", "country_id": "us", "max_price": max_price}
    if order_id is not None:
        body["order_id"] = order_id
    return {**body, **more}


async def test_at_most_three_orders_follow_a_409(caplog: pytest.LogCaptureFixture) -> None:
    """Within a ceiling of 200, each 409's price is followed with its token - three
    times; the fourth 409 is raised, and each re-order is logged at DEBUG."""
    server = Server(
        conflict(110, "o-1"), conflict(120, "o-2"), conflict(130, "o-3"), conflict(140, "o-4")
    )
    with (
        caplog.at_level(logging.DEBUG, logger="platfone_async"),
        pytest.raises(MaxPriceExceededError) as raised,
    ):
        await open_and_leave(server, max_price=100, price_ceiling=200)
    assert 140 == raised.value.suggested_price
    assert [order(100), order(110, "o-1"), order(120, "o-2"), order(130, "o-3")] == (
        orders_sent(server)
    )
    assert [
        "netflix/us: no number at 100 cents; ordering again at 110",
        "netflix/us: no number at 110 cents; ordering again at 120",
        "netflix/us: no number at 120 cents; ordering again at 130",
    ] == [r.getMessage() for r in caplog.records if "no number at" in r.getMessage()]


async def test_a_suggested_price_at_the_ceiling_is_ordered() -> None:
    """The ceiling itself is within the ceiling."""
    server = Server(conflict(200, "o-1"), OPENED, default=OPENED)
    assert SessionOutcome.LEFT_TO_EXPIRE == await open_and_leave(server, price_ceiling=200)
    assert [order(200), order(200, "o-1")] == orders_sent(server)


@pytest.mark.parametrize(
    ("options", "suggested"),
    [({"max_price": 100}, 150), ({"price_ceiling": 300}, None)],
    ids=["no ceiling", "no suggested price"],
)
async def test_a_409_without_a_ceiling_or_a_price_is_raised_as_is(
    options: dict[str, int], suggested: int | None
) -> None:
    """No ceiling, or a 409 that suggests nothing: raised after the one order."""
    server = Server(conflict(suggested, "o-1"))
    with pytest.raises(MaxPriceExceededError) as raised:
        await open_and_leave(server, **options)
    assert suggested == raised.value.suggested_price
    assert 1 == len(orders_sent(server))


async def test_a_stale_token_is_dropped_once_and_the_order_made_afresh(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 409's token has gone stale ("Order not found"): the same price is ordered
    once more without any order_id, and that is logged at DEBUG."""
    server = Server(conflict(150, "o-1"), STALE, OPENED, default=OPENED)
    with caplog.at_level(logging.DEBUG, logger="platfone_async"):
        await open_and_leave(server, max_price=100, price_ceiling=200, quality_factor=0.5)
    sent = orders_sent(server)
    assert [order(100), order(150, "o-1"), order(150)] == [
        {k: v for k, v in body.items() if k != "quality_factor"} for body in sent
    ]
    assert [0.5] * 3 == [body["quality_factor"] for body in sent]
    assert ["netflix/us: stale order_id; ordering afresh"] == [
        r.getMessage() for r in caplog.records if "stale" in r.getMessage()
    ]


async def test_a_token_stale_twice_or_a_first_order_not_found_is_raised() -> None:
    """Afresh only once: a second "Order not found" is raised - even for a token a later
    409 gave; so is one answering an order that carried no token."""
    twice = Server(conflict(150, "o-1"), STALE, STALE)
    with pytest.raises(NotFoundError):
        await open_and_leave(twice, max_price=100, price_ceiling=200)
    assert [order(100), order(150, "o-1"), order(150)] == orders_sent(twice)
    again = Server(conflict(150, "o-1"), STALE, conflict(160, "o-2"), STALE)
    with pytest.raises(NotFoundError):
        await open_and_leave(again, max_price=100, price_ceiling=200)
    assert [order(100), order(150, "o-1"), order(150), order(160, "o-2")] == orders_sent(again)
    first = Server(STALE)
    with pytest.raises(NotFoundError):
        await open_and_leave(first, max_price=100, price_ceiling=200)
    assert [order(100)] == orders_sent(first)


@pytest.mark.parametrize(
    ("options", "parameter", "shown"),
    [
        ({"price_ceiling": 0}, "price_ceiling", "invalid price_ceiling=0"),
        ({"price_ceiling": 10_001}, "price_ceiling", "invalid price_ceiling=10001"),
        (
            {"max_price": 201, "price_ceiling": 200},
            "max_price",
            "invalid max_price=201: must not exceed price_ceiling (200)",
        ),
        ({"max_price": 0}, "max_price", "invalid max_price=0"),
    ],
)
async def test_prices_are_checked_and_named(
    options: dict[str, int], parameter: str, shown: str
) -> None:
    """The error names the price at fault, and nothing is sent."""
    server = Server()
    with pytest.raises(InvalidParameterError) as raised:
        await open_and_leave(server, **options)
    assert parameter == raised.value.parameter
    assert str(raised.value).startswith(shown)
    assert [] == server.requests


async def test_a_max_price_equal_to_the_ceiling_is_fine() -> None:
    """max_price may be the ceiling itself."""
    server = Server(OPENED, default=OPENED)
    await open_and_leave(server, max_price=200, price_ceiling=200)
    assert [order(200)] == orders_sent(server)
