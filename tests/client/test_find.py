"""find_service / find_country: ids, names, alt names, parts of names, accents, typos."""

from __future__ import annotations

import pytest

import platfone_async
from platfone_async import CatalogMatch, Platfone
from platfone_async.testing import Country, PlatfoneEmulator, Service


def _emulator() -> PlatfoneEmulator:
    emulator = PlatfoneEmulator(rate_limits=None)
    emulator.catalog.add_country(Country("ci", "Côte d'Ivoire", ("225",), alt_name="Ivory Coast"))
    emulator.catalog.add_service(Service("hidden", "Hidden Casino", prohibited=True))
    emulator.catalog.add_service(Service("mail1", "Mail"))
    emulator.catalog.add_service(Service("mail2", "Mail"))
    return emulator


def _ids(
    matches: list[CatalogMatch[platfone_async.Service]]
    | list[CatalogMatch[platfone_async.Country]],
) -> list[str]:
    out = []
    for match in matches:
        item = match.item
        out.append(item.service_id if isinstance(item, platfone_async.Service) else item.country_id)
    return out


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("whatsapp", "whatsapp"),  # the id
        ("WhatsApp", "whatsapp"),  # the name, any case
        ("  WHATSAPP ", "whatsapp"),
        ("gmail", "google"),  # a part of "Google / Gmail / YouTube"
        ("Twitter", "twitter"),
        ("x", "twitter"),  # a part of "X (Twitter)"
        ("7 eleven", "7eleven"),  # punctuation ignored: "7-Eleven"
        ("chatgpt", "openai"),
    ],
)
async def test_find_service_names_one_service_exactly(query: str, expected: str) -> None:
    """An id, a name or a part of one, in any case or punctuation, names one service."""
    async with _emulator().client() as client:
        matches = await client.find_service(query)
    assert [expected] == _ids(matches)
    assert matches[0].exact


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("uk", "uk"),
        ("United Kingdom", "uk"),
        ("united kingdom", "uk"),
        ("Cote d'Ivoire", "ci"),  # accents ignored
        ("CÔTE D\u2019IVOIRE", "ci"),  # a typographic apostrophe
        ("ivory coast", "ci"),  # the alt_name
        ("United States", "us"),  # a whole name beats a part of "United States (Virtual)"
        ("virtual", "us_v"),
    ],
)
async def test_find_country_names_one_country_exactly(query: str, expected: str) -> None:
    """Ids, names, alt names, accents and case: each names one country."""
    async with _emulator().client() as client:
        matches = await client.find_country(query)
    assert [expected] == _ids(matches)
    assert [True] == [m.exact for m in matches]


@pytest.mark.anyio
async def test_a_misspelt_name_gets_the_closest_suggestions() -> None:
    """A typo is no exact match: the closest services come back, best first."""
    async with _emulator().client() as client:
        matches = await client.find_service("whatsap")
        unknown = await client.find_service("qqqqqqqq")
    assert "whatsapp" == _ids(matches)[0]
    assert not any(m.exact for m in matches)
    assert sorted(matches, key=lambda m: -m.score) == matches
    assert [] == unknown


@pytest.mark.anyio
async def test_a_prefix_lists_every_entry_it_starts() -> None:
    """ "united" is no country's name: the three it starts are offered, none exact."""
    async with _emulator().client() as client:
        matches = await client.find_country("united")
    assert {"uk", "us", "us_v"} == set(_ids(matches))
    assert not any(m.exact for m in matches)


@pytest.mark.anyio
async def test_a_repeated_name_is_ambiguous() -> None:
    """Two services called "Mail": both come back, both exact (the caller must choose)."""
    async with _emulator().client() as client:
        matches = await client.find_service("mail")
    assert ["mail1", "mail2"] == sorted(_ids(matches))
    assert [True, True] == [m.exact for m in matches]


@pytest.mark.anyio
async def test_prohibited_services_are_never_offered() -> None:
    """A prohibited service is found neither by its id, nor by its name, nor by a typo."""
    async with _emulator().client() as client:
        by_id = await client.find_service("hidden")
        by_name = await client.find_service("Hidden Casino")
    assert "hidden" not in _ids(by_id) + _ids(by_name)


@pytest.mark.anyio
async def test_limit_caps_the_suggestions_and_the_catalog_is_read_from_cache() -> None:
    """At most ``limit`` suggestions; a second search costs a 304, not a new catalog."""
    emulator = _emulator()
    async with emulator.client() as client:
        first = await client.find_country("a", limit=3)
        await client.find_country("b")
    assert 3 == len(first)
    assert 2 == emulator.request_count("get_countries")


def test_the_sync_client_finds_the_same() -> None:
    """``Platfone.find_service`` / ``find_country`` are the blocking twins."""
    emulator = _emulator()
    with Platfone(
        emulator.api_key,
        base_url=emulator.base_url,
        http_client=emulator.http_client(),
        rate_limits=None,
    ) as client:
        service = client.find_service("Telegram")
        country = client.find_country("ivory coast")
    assert ["telegram"] == _ids(service)
    assert ["ci"] == _ids(country)
