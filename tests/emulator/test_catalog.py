"""The emulator's catalog and prices: content, price summaries, ETag revalidation."""

from __future__ import annotations

import httpx
import pytest

from platfone_async import AsyncPlatfone, BadRequestError, NotFoundError
from platfone_async.testing import Country, Offer, PlatfoneEmulator, Service

CATALOG_PATHS = ["/activation/countries", "/activation/services", "/activation/services/popular"]


def client_of(emulator: PlatfoneEmulator) -> AsyncPlatfone:
    return emulator.client(rate_limits=None, max_retries=0)


def http_of(emulator: PlatfoneEmulator) -> httpx.AsyncClient:
    return emulator.http_client(headers={"X-Api-Key": emulator.api_key})


@pytest.mark.anyio
async def test_default_catalog_is_a_realistic_market(emulator: PlatfoneEmulator) -> None:
    """Dozens of services with `other`, dozens of countries with a `_v` one, popular ones."""
    async with client_of(emulator) as client:
        services = {s.service_id for s in await client.get_services()}
        countries = {c.country_id for c in await client.get_countries()}
        popular = {s.service_id for s in await client.get_popular_services()}
    assert len(services) >= 24
    assert len(countries) >= 24
    assert {"other", "7eleven", "telegram"} <= services
    assert {"us", "us_v", "uk"} <= countries
    assert popular <= services
    assert "other" in popular


@pytest.mark.anyio
async def test_the_same_seed_gives_the_same_market() -> None:
    """Two emulators with one seed price everything alike; another seed differs."""
    first, second = PlatfoneEmulator(seed=7), PlatfoneEmulator(seed=7)
    other = PlatfoneEmulator(seed=8)
    async with client_of(first) as a, client_of(second) as b, client_of(other) as c:
        prices_a = await a.get_prices_by_service()
        prices_b = await b.get_prices_by_service()
        prices_c = await c.get_prices_by_service()
    assert prices_a == prices_b
    assert prices_a != prices_c


@pytest.mark.anyio
async def test_price_info_summarises_the_offers(emulator: PlatfoneEmulator) -> None:
    """min/max over offers, suggested = the default pick, quality averaged by stock."""
    emulator.catalog.set_offers(
        "telegram", "uk", [Offer(100, 0.2, 30), Offer(300, 0.6, 10), Offer(50, 0.9, 0)]
    )
    async with client_of(emulator) as client:
        info = await client.get_price("telegram", "uk")
    assert (50, 300, 100) == (info.price.min, info.price.max, info.price.suggested)
    assert 0.3 == info.quality.avg  # (0.2*30 + 0.6*10) / 40, sold-out offers aside
    assert 40 == info.count


@pytest.mark.anyio
async def test_price_lists_by_country_and_by_service(emulator: PlatfoneEmulator) -> None:
    """The two price lists agree with get_price and honour their filter."""
    async with client_of(emulator) as client:
        by_country = await client.get_prices_by_country("uk")
        by_service = await client.get_prices_by_service("telegram")
        single = await client.get_price("telegram", "uk")
    assert ["uk"] == [entry.country_id for entry in by_country]
    assert ["telegram"] == [entry.service_id for entry in by_service]
    in_country = {s.service_id: s for s in by_country[0].services}["telegram"]
    in_service = {c.country_id: c for c in by_service[0].countries}["uk"]
    assert (single.price, single.count) == (in_country.price, in_country.count)
    assert (single.price, single.count) == (in_service.price, in_service.count)


@pytest.mark.anyio
async def test_a_pair_without_offers_has_no_price(emulator: PlatfoneEmulator) -> None:
    """A pair that is not on sale is 404 on get_price and missing from the lists."""
    emulator.catalog.set_offers("telegram", "uk", [])
    async with client_of(emulator) as client:
        with pytest.raises(NotFoundError):
            await client.get_price("telegram", "uk")
        by_country = await client.get_prices_by_country("uk")
    assert "telegram" not in {s.service_id for s in by_country[0].services}


@pytest.mark.anyio
async def test_invalid_ids_in_price_paths_are_bad_requests(emulator: PlatfoneEmulator) -> None:
    """The server checks the id patterns of the price endpoints."""
    async with http_of(emulator) as http:
        bad_country = await http.get("/activation/prices/countries", params={"country_id": "x"})
        bad_service = await http.get("/activation/prices/services/-x-/countries/us")
    assert (400, 400) == (bad_country.status_code, bad_service.status_code)


@pytest.mark.anyio
@pytest.mark.parametrize("path", CATALOG_PATHS)
async def test_catalog_answers_an_etag_and_304_when_it_matches(
    emulator: PlatfoneEmulator, path: str
) -> None:
    """X-ETag on 200; If-None-Match with it gives an empty 304, a stale one a 200."""
    async with http_of(emulator) as http:
        first = await http.get(path)
        etag = first.headers["x-etag"]
        same = await http.get(path, headers={"If-None-Match": etag})
        quoted = await http.get(path, headers={"If-None-Match": f'W/"{etag}"'})
        stale = await http.get(path, headers={"If-None-Match": "0" * 40})
    assert (200, 304, 304, 200) == tuple(r.status_code for r in (first, same, quoted, stale))
    assert (b"", etag) == (same.content, same.headers["x-etag"])
    assert first.json() == stale.json()


@pytest.mark.anyio
async def test_etag_changes_with_the_catalog(emulator: PlatfoneEmulator) -> None:
    """A new service or country gives a new ETag, so cached clients refetch."""
    async with http_of(emulator) as http:
        services_before = (await http.get("/activation/services")).headers["x-etag"]
        countries_before = (await http.get("/activation/countries")).headers["x-etag"]
        emulator.catalog.add_service(Service("newapp", "New App"))
        emulator.catalog.add_country(Country("xx", "Exampleland", ("999",)))
        services = await http.get(
            "/activation/services", headers={"If-None-Match": services_before}
        )
        countries = await http.get(
            "/activation/countries", headers={"If-None-Match": countries_before}
        )
    assert (200, 200) == (services.status_code, countries.status_code)
    assert "newapp" in {s["service_id"] for s in services.json()}
    assert "xx" in {c["country_id"] for c in countries.json()}


@pytest.mark.anyio
async def test_the_client_revalidates_its_catalog_cache(emulator: PlatfoneEmulator) -> None:
    """AsyncPlatfone's second get_services is a 304 and returns the same list."""
    async with client_of(emulator) as client:
        first = await client.get_services()
        second = await client.get_services()
    assert first == second
    assert [200, 304] == [r.status for r in emulator.requests if r.route == "get_services"]


@pytest.mark.anyio
async def test_a_service_id_with_a_leading_digit_is_valid(emulator: PlatfoneEmulator) -> None:
    """The reference's own `7eleven` example prices and orders fine."""
    emulator.catalog.set_offers("7eleven", "us", [Offer(80)])
    async with client_of(emulator) as client:
        info = await client.get_price("7eleven", "us")
        activation = await client.create_activation("7eleven", "us")
    assert (80, 80) == (info.price.suggested, activation.price)


@pytest.mark.anyio
async def test_set_offers_refuses_unknown_ids(emulator: PlatfoneEmulator) -> None:
    """The catalog control names a typo instead of silently adding a pair."""
    with pytest.raises(KeyError):
        emulator.catalog.set_offers("nosuch", "us", [Offer(1)])
    with pytest.raises(KeyError):
        emulator.catalog.set_offers("google", "zz", [Offer(1)])
    async with client_of(emulator) as client:
        with pytest.raises(BadRequestError):
            await client.create_activation("google", "zz")
