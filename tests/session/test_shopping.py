"""A session that shops: the best offer of several countries, and the next when one has
no number or wants more than the ceiling."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from platfone_async import (
    AsyncPlatfone,
    InvalidParameterError,
    MaxPriceExceededError,
    NoNumbersAvailableError,
    SpendLimit,
    SpendLimitError,
)
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, VirtualClock

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.emulator(
        balance=100_000,
        success_rate_check=False,
        offers={
            ("telegram", "uk"): [Offer(100, 0.9, 50, cancel_after=0)],
            ("telegram", "de"): [Offer(50, 0.3, 50, cancel_after=0)],
            ("telegram", "fr"): [Offer(80, 0.8, 50, cancel_after=0)],
            ("telegram", "es"): [Offer(20, 0.9, 0)],  # sold out
        },
    ),
]

NO_NUMBERS = Fault(
    status=404,
    body={"errorName": "NoNumbersAvailableException", "errorMessage": "no numbers"},
)


def sell_only(emulator: PlatfoneEmulator, service_id: str, *country_ids: str) -> None:
    """``service_id`` in stock only in ``country_ids`` (the default catalog sells most
    services in many countries)."""
    for country_id in emulator.catalog.countries:
        if country_id not in country_ids:
            emulator.catalog.set_stock(service_id, country_id, 0)


@pytest.fixture(autouse=True)
def market(emulator: PlatfoneEmulator) -> None:
    """Telegram is sold only where this module's offers say."""
    sell_only(emulator, "telegram", "uk", "de", "fr", "es")


def client_of(
    emulator: PlatfoneEmulator,
    sent: list[dict[str, Any]] | None = None,
    spend_limit: SpendLimit | None = None,
) -> AsyncPlatfone:
    """A client whose order bodies are kept in ``sent``."""

    async def keep(request: httpx.Request) -> None:
        if (
            sent is not None
            and request.method == "POST"
            and request.url.path.endswith("/activation")
        ):
            sent.append(json.loads(request.content))

    http = emulator.http_client(event_hooks={"request": [keep]})
    return AsyncPlatfone(
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        http_client=http,
        clock=emulator.clock,  # type: ignore[arg-type]
        rate_limits=None,
        max_retries=0,
        spend_limit=spend_limit,
    )


async def test_without_a_country_the_best_offer_of_all_is_ordered(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """None: every country that sells the service; balanced picks fr (0.8 at 80), price
    picks de; one price-list request, one order, and the block settles the number."""
    async with clock.autojump(), client_of(emulator) as client:
        async with client.activation("telegram", None) as balanced:
            pass
        async with client.activation("telegram", None, prefer="price") as cheapest:
            pass
    assert ("fr", "de") == (balanced.activation.country_id, cheapest.activation.country_id)
    assert 2 == emulator.request_count("get_prices_by_service")
    assert 2 == emulator.orders_placed()
    assert "canceled" == emulator.activation(balanced.activation.activation_id)["activation_status"]


async def test_candidates_limit_the_choice(emulator: PlatfoneEmulator, clock: VirtualClock) -> None:
    """A list of ids: the best offer among them only."""
    async with (
        clock.autojump(),
        client_of(emulator) as client,
        client.activation("telegram", ["uk", "de"], prefer="quality") as session,
    ):
        pass
    assert "uk" == session.activation.country_id


async def test_a_country_without_numbers_passes_to_the_next_offer(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """NoNumbersAvailable for the best offer: the next one is ordered, once."""
    emulator.inject_fault("create_activation", NO_NUMBERS)
    sent: list[dict[str, Any]] = []
    async with (
        clock.autojump(),
        client_of(emulator, sent) as client,
        client.activation("telegram", ["uk", "de", "fr"]) as session,
    ):
        pass
    assert ["fr", "uk"] == [body["country_id"] for body in sent]
    assert "uk" == session.activation.country_id
    assert 1 == emulator.orders_placed()


async def test_a_price_above_the_ceiling_passes_to_the_next_and_never_goes_over_it(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """fr lists a 40-cent number but sells at 200: its 409 is above the ceiling, so the
    next offer is ordered; no order ever carries a max_price above the ceiling."""
    emulator.catalog.set_offers(
        "telegram", "fr", [Offer(40, 0.9, 0), Offer(200, 0.9, 50, cancel_after=0)]
    )
    sent: list[dict[str, Any]] = []
    async with (
        clock.autojump(),
        client_of(emulator, sent) as client,
        client.activation("telegram", None, price_ceiling=100) as session,
    ):
        pass
    assert "fr" == sent[0]["country_id"]
    assert session.activation.country_id != "fr"
    assert all(body["max_price"] <= 100 for body in sent)
    assert 1 == emulator.orders_placed()


async def test_when_no_offer_has_a_number_the_last_error_is_raised(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Every candidate refuses: the last refusal is raised, nothing is held."""
    emulator.inject_fault("create_activation", NO_NUMBERS, times=2)
    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(NoNumbersAvailableError):
            async with client.activation("telegram", ["uk", "de"]):
                raise AssertionError("the block never runs")  # pragma: no cover
    assert 2 == emulator.request_count("create_activation")
    assert 0 == emulator.orders_placed()


async def test_no_offer_in_the_price_list_orders_nothing(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Sold out, or above the ceiling everywhere: refused from the price list, unsent."""
    emulator.catalog.set_stock("telegram", "uk", 0)
    async with clock.autojump(), client_of(emulator) as client:
        with pytest.raises(NoNumbersAvailableError) as sold_out:
            async with client.activation("telegram", ["es", "uk"]):
                pass  # pragma: no cover
        with pytest.raises(NoNumbersAvailableError):
            async with client.activation("telegram", None, price_ceiling=10):
                pass  # pragma: no cover
    assert "no order was sent" in str(sold_out.value)
    assert 0 == emulator.request_count("create_activation")


async def test_one_country_orders_there_without_the_price_list(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A single id behaves as before: no ranking, its 409 above the ceiling raised."""
    emulator.catalog.set_offers("telegram", "fr", [Offer(200, 0.9, 50)])
    async with clock.autojump(), client_of(emulator) as client:
        async with client.activation("telegram", "uk") as session:
            pass
        with pytest.raises(MaxPriceExceededError):
            async with client.activation("telegram", "fr", price_ceiling=100):
                pass  # pragma: no cover
    assert "uk" == session.activation.country_id
    assert 0 == emulator.request_count("get_prices_by_service")


async def test_bad_candidates_or_preference_are_refused_before_anything_is_sent(
    emulator: PlatfoneEmulator,
) -> None:
    """An empty list, a malformed id or an unknown preference: nothing is sent."""
    async with client_of(emulator) as client:
        for country, prefer in (([], "price"), (["u k"], "price"), (None, "cheap")):
            with pytest.raises(InvalidParameterError):
                async with client.activation("telegram", country, prefer=prefer):  # type: ignore[arg-type]
                    pass  # pragma: no cover
    assert 0 == emulator.request_count()


async def test_an_offer_the_spend_limit_refuses_passes_to_a_cheaper_one(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Quality ranks uk (100 cents) first: over a 90-cent limit, refused unsent; fr (80)
    fits and is ordered - the budget stops one offer, not the session."""
    sent: list[dict[str, Any]] = []
    async with (
        clock.autojump(),
        client_of(emulator, sent, SpendLimit(90, 3600)) as client,
        client.activation("telegram", ["uk", "fr"], prefer="quality") as session,
    ):
        pass
    assert ["fr"] == [body["country_id"] for body in sent]
    assert "fr" == session.activation.country_id
    assert 1 == emulator.orders_placed()


async def test_when_the_spend_limit_refuses_every_offer_its_error_is_raised_unsent(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """A 40-cent limit: every offer costs more; SpendLimitError (the best offer's price,
    100), rather than the sold-out country's NoNumbersAvailable; no order left."""
    async with clock.autojump(), client_of(emulator, spend_limit=SpendLimit(40, 3600)) as client:
        with pytest.raises(SpendLimitError) as caught:
            async with client.activation("telegram", ["uk", "de", "es"], prefer="quality"):
                raise AssertionError("the block never runs")  # pragma: no cover
    assert 100 == caught.value.price
    assert 0 == emulator.request_count("create_activation")
