"""Shopping: ranking the countries that sell a service, from its price list.

``AsyncPlatfone.rank_offers`` is :func:`rank`. What it weighs is what the price list
gives per country: the suggested price (what an order without ``max_price`` pays), the
suppliers' average quality (0..1, how often their numbers get the SMS) and the stock.

Why ``"balanced"`` ranks by quality per price: a number is billed only when its SMS
comes (one that gets none is released), so the money a code costs is the price, and
the numbers tried for one code are about ``1 / quality``. ``quality / price`` is the
chance of a code per cent reserved: an offer twice the price must be twice as likely to
deliver to rank alike, and each number that stays silent costs time, a slot and the
account's success rate (the 24 h block below 7 %) - which is why quality is not left
out, as ``"price"`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ._models import publish
from ._models._catalog import CountryPrice
from ._validate import Prefer

__all__ = ["Offer", "rank"]


@attrs.frozen
class Offer:
    """One country's offer of a service, as :meth:`AsyncPlatfone.rank_offers` ranks it.

    ``price`` is what an order there is expected to cost in USD cents: the price list's
    suggested price, or ``price_ceiling`` where the suggestion is above it and cheaper
    numbers are within it (an order capped at the ceiling buys one of those).
    ``quality`` is the suppliers' average (0..1), ``count`` the numbers in stock, and
    ``score`` the ranking's measure (higher is better; see ``prefer``), comparable only
    within one ranking.
    """

    country_id: str
    price: int
    quality: float
    count: int
    score: float


publish(Offer)  # loaded on first use: label it here


def rank(
    countries: Iterable[CountryPrice],
    *,
    only: tuple[str, ...] | None,
    prefer: Prefer,
    price_ceiling: int | None,
) -> list[Offer]:
    """The offers among ``countries`` (limited to ``only``), best first.

    Left out: a country with nothing in stock, or whose cheapest number costs more than
    ``price_ceiling``. Ties go to the cheaper offer, then to the one with more stock,
    then to the country id, so that a ranking is the same for the same price list.
    """
    wanted = None if only is None else set(only)
    found: list[tuple[str, int, float, int]] = []
    for country in countries:
        if wanted is not None and country.country_id not in wanted:
            continue
        if country.count <= 0:
            continue
        if price_ceiling is not None and country.price.min > price_ceiling:
            continue
        price = country.price.suggested
        if price_ceiling is not None:
            price = min(price, price_ceiling)
        found.append((country.country_id, max(price, 1), country.quality.avg, country.count))
    if not found:
        return []
    cheapest = min(price for _, price, _, _ in found)
    offers = [
        Offer(cid, price, quality, count, _score(prefer, cheapest / price, quality))
        for cid, price, quality, count in found
    ]
    offers.sort(key=lambda o: (-o.score, o.price, -o.quality, -o.count, o.country_id))
    return offers


def _score(prefer: Prefer, cheapness: float, quality: float) -> float:
    """``cheapness`` is the cheapest price over this one (1.0 for the cheapest)."""
    if prefer == "price":
        return round(cheapness, 6)
    if prefer == "quality":
        return round(quality, 6)
    return round(quality * cheapness, 6)
