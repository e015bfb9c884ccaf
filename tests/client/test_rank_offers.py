"""rank_offers: the countries that sell a service, best first, by price, quality or both."""

from __future__ import annotations

import pytest

from platfone_async import InvalidParameterError, Offer
from platfone_async.testing import Offer as Supply
from platfone_async.testing import PlatfoneEmulator

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.emulator(
        offers={
            ("telegram", "uk"): [Supply(100, 0.9, 10)],
            ("telegram", "de"): [Supply(50, 0.3, 40)],
            ("telegram", "fr"): [Supply(80, 0.8, 5)],
            ("telegram", "es"): [Supply(20, 0.9, 0)],  # sold out
            ("telegram", "it"): [Supply(300, 0.95, 9)],
        }
    ),
]

CANDIDATES = ["uk", "de", "fr", "es", "it"]


async def _ranked(emulator: PlatfoneEmulator, **kwargs: object) -> list[tuple[str, int]]:
    async with emulator.client(rate_limits=None) as client:
        offers = await client.rank_offers("telegram", CANDIDATES, **kwargs)  # type: ignore[arg-type]
    return [(o.country_id, o.price) for o in offers]


async def test_each_preference_orders_the_candidates_its_own_way(
    emulator: PlatfoneEmulator,
) -> None:
    """price: cheapest first; quality: best first; balanced: quality per price (fr 0.8 at
    80 beats uk 0.9 at 100 and de 0.3 at 50); the sold-out country is never offered."""
    assert [("de", 50), ("fr", 80), ("uk", 100), ("it", 300)] == await _ranked(
        emulator, prefer="price"
    )
    assert ["it", "uk", "fr", "de"] == [c for c, _ in await _ranked(emulator, prefer="quality")]
    assert ["fr", "uk", "de", "it"] == [c for c, _ in await _ranked(emulator)]


async def test_an_offer_carries_what_it_was_ranked_by(emulator: PlatfoneEmulator) -> None:
    """Each offer has the price list's price, quality and stock, and a score that falls
    down the list; one request was made and nothing was ordered."""
    async with emulator.client(rate_limits=None) as client:
        offers = await client.rank_offers("telegram", ["uk", "de"])
    assert [Offer("uk", 100, 0.9, 10, 0.45), Offer("de", 50, 0.3, 40, 0.3)] == offers
    assert 1 == emulator.request_count()
    assert 0 == emulator.orders_placed()


async def test_a_ceiling_leaves_out_what_costs_more_and_caps_the_rest(
    emulator: PlatfoneEmulator,
) -> None:
    """A country whose cheapest number is above the ceiling is left out; one whose
    suggested price is above it but has cheaper numbers is offered at the ceiling."""
    pl = [Supply(200, 0.95, 3), Supply(60, 0.1, 3), Supply(120, 0.9, 3)]
    emulator.catalog.set_offers("telegram", "pl", pl)
    async with emulator.client(rate_limits=None) as client:
        suggested = (await client.get_price("telegram", "pl")).price.suggested
        offers = await client.rank_offers("telegram", ["uk", "de", "pl"], price_ceiling=90)
    assert 90 < suggested
    assert {("de", 50), ("pl", 90)} == {(o.country_id, o.price) for o in offers}


async def test_every_country_that_sells_the_service_by_default(
    emulator: PlatfoneEmulator,
) -> None:
    """Without candidates: every country of the price list with stock, best score first."""
    async with emulator.client(rate_limits=None) as client:
        offers = await client.rank_offers("telegram", prefer="price")
        listed = (await client.get_prices_by_service("telegram"))[0].countries
    in_stock = {c.country_id for c in listed if c.count > 0}
    assert in_stock == {o.country_id for o in offers}
    assert len(in_stock) == len(offers)
    assert "es" not in in_stock
    scores = [o.score for o in offers]
    assert sorted(scores, reverse=True) == scores


async def test_one_country_id_is_a_list_of_one(emulator: PlatfoneEmulator) -> None:
    """``rank_offers("telegram", "uk")`` means the candidates ``["uk"]``, not u and k."""
    assert [("uk", 100)] == [
        (o.country_id, o.price)
        for o in await emulator.client(rate_limits=None).rank_offers("telegram", "uk")
    ]


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"prefer": "cheap"}, "prefer"),
        ({"price_ceiling": 0}, "price_ceiling"),
        ({"price_ceiling": 10_001}, "price_ceiling"),
        ({"country_ids": []}, "country_ids"),
        ({"country_ids": ["uk", "U K!"]}, "country_ids"),
        ({"service_id": "no such!"}, "service_id"),
    ],
)
async def test_bad_arguments_fail_before_anything_is_sent(
    emulator: PlatfoneEmulator, kwargs: dict[str, object], parameter: str
) -> None:
    """A bad preference, ceiling, candidate list or id: InvalidParameterError, no request."""
    arguments: dict[str, object] = {"service_id": "telegram", **kwargs}
    async with emulator.client(rate_limits=None) as client:
        with pytest.raises(InvalidParameterError) as caught:
            await client.rank_offers(**arguments)  # type: ignore[arg-type]
    assert parameter == caught.value.parameter
    assert 0 == emulator.request_count()
