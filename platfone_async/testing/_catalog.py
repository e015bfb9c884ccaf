"""The emulator's catalog: services, countries and the offers that price them.

An *offer* is one supplier's stock of numbers for a service in a country, with its own
price and quality. The price endpoints summarise the offers of a pair; ordering picks
one offer by ``quality_factor`` and ``max_price``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = ["Catalog", "Country", "Offer", "Service", "default_catalog"]


@attrs.frozen
class Service:
    """A service numbers can be ordered for (``other`` covers everything unlisted)."""

    service_id: str
    name: str
    alt_name: str = ""
    has_description: bool = False
    has_warning: bool = False
    prohibited: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "service_id": self.service_id,
            "name": self.name,
            "alt_name": self.alt_name or self.name,
            "has_description": self.has_description,
            "has_warning": self.has_warning,
            "prohibited": self.prohibited,
        }


@attrs.frozen
class Country:
    """A country; an id ending in ``_v`` holds only virtual numbers.

    Its numbers are ``codes[0]`` followed by a national number of ``national_length``
    digits that starts with one of ``mobile_prefixes`` (a mobile range of the country).
    Left at their defaults, they follow the plan of the country's calling code when the
    emulator knows it (:data:`MOBILE_PLANS`), else 10 digits that do not start with 0.
    """

    country_id: str
    name: str
    codes: tuple[str, ...]
    alt_name: str = ""
    national_length: int | None = None
    mobile_prefixes: tuple[str, ...] = ()

    def phone(self, rng: random.Random) -> str:
        """A plausible mobile number: the calling code, a mobile range, random digits."""
        code = self.codes[0]
        length, prefixes = MOBILE_PLANS.get(code, (10, tuple("123456789")))
        if self.national_length is not None:
            length = self.national_length
        prefix = rng.choice(self.mobile_prefixes or prefixes)
        return (
            code + prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix)))
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "country_id": self.country_id,
            "name": self.name,
            "alt_name": self.alt_name or self.name,
            "codes": list(self.codes),
        }


@attrs.define
class Offer:
    """One supplier's numbers for a service in a country.

    ``quality`` is 0..1 (what ``quality.avg`` averages). ``count`` goes down by one per
    order. ``retriable`` becomes the activation's ``is_retriable``; ``cancel_after`` is
    how many seconds after creation it may be cancelled (``None``: never).
    """

    price: int
    quality: float = 0.5
    count: int = 100
    retriable: bool = True
    cancel_after: int | None = 120


def pick_offer(offers: Sequence[Offer], quality_factor: float) -> Offer | None:
    """The in-stock offer that best balances price (0) against quality (100)."""
    stock = [offer for offer in offers if offer.count > 0]
    if not stock:
        return None
    low, high = min(o.price for o in stock), max(o.price for o in stock)
    worst, best = min(o.quality for o in stock), max(o.quality for o in stock)
    weight = quality_factor / 100.0

    def score(offer: Offer) -> tuple[float, int]:
        price = (offer.price - low) / (high - low) if high > low else 0.0
        quality = (offer.quality - worst) / (best - worst) if best > worst else 0.0
        return (weight * quality - (1.0 - weight) * price, -offer.price)

    return max(stock, key=score)


class Catalog:
    """Services, countries and offers; mutate it to shape a test's market."""

    def __init__(
        self,
        services: Iterable[Service] = (),
        countries: Iterable[Country] = (),
        popular: Iterable[str] = (),
    ) -> None:
        self.services: dict[str, Service] = {s.service_id: s for s in services}
        self.countries: dict[str, Country] = {c.country_id: c for c in countries}
        self.popular: list[str] = list(popular)
        self._offers: dict[tuple[str, str], list[Offer]] = {}

    def add_service(self, service: Service) -> None:
        self.services[service.service_id] = service

    def add_country(self, country: Country) -> None:
        self.countries[country.country_id] = country

    def set_offers(self, service_id: str, country_id: str, offers: Iterable[Offer]) -> None:
        """Replace what is on sale for a pair (an empty list: the pair is not offered)."""
        if service_id not in self.services:
            raise KeyError(f"unknown service_id {service_id!r}")
        if country_id not in self.countries:
            raise KeyError(f"unknown country_id {country_id!r}")
        self._offers[service_id, country_id] = list(offers)

    def set_stock(self, service_id: str, country_id: str, count: int) -> None:
        """Set every offer of a pair to ``count`` numbers (0: sold out)."""
        for offer in self.offers(service_id, country_id):
            offer.count = count

    def offers(self, service_id: str, country_id: str) -> list[Offer]:
        return self._offers.get((service_id, country_id), [])

    def price_info(self, service_id: str, country_id: str) -> dict[str, Any] | None:
        """The ``PriceInfo`` JSON of a pair, or None when it is not offered."""
        offers = self.offers(service_id, country_id)
        if not offers:
            return None
        stock = [o for o in offers if o.count > 0]
        chosen = pick_offer(offers, 50.0)
        weighted = stock or offers
        weights = [max(o.count, 1) for o in weighted]
        avg = sum(o.quality * w for o, w in zip(weighted, weights, strict=True)) / sum(weights)
        return {
            "price": {
                "min": min(o.price for o in offers),
                "max": max(o.price for o in offers),
                "suggested": chosen.price if chosen else min(o.price for o in offers),
            },
            "quality": {"avg": round(avg, 2)},
            "count": sum(o.count for o in offers),
        }

    def prices_by_country(self, country_id: str | None) -> list[dict[str, Any]]:
        result = []
        for cid in self.countries if country_id is None else [country_id]:
            services = []
            for sid in self.services:
                info = self.price_info(sid, cid)
                if info is not None:
                    services.append({"service_id": sid, **info})
            if services:
                result.append({"country_id": cid, "services": services})
        return result

    def prices_by_service(self, service_id: str | None) -> list[dict[str, Any]]:
        result = []
        for sid in self.services if service_id is None else [service_id]:
            countries = []
            for cid in self.countries:
                info = self.price_info(sid, cid)
                if info is not None:
                    countries.append({"country_id": cid, **info})
            if countries:
                result.append({"service_id": sid, "countries": countries})
        return result

    def services_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.services.values()]

    def popular_json(self) -> list[dict[str, Any]]:
        return [self.services[s].to_json() for s in self.popular if s in self.services]

    def countries_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.countries.values()]


def etag_of(document: Any) -> str:
    """A stable validator for a JSON document (sha1 of its canonical form)."""
    raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


# (id, name, price tier in cents, has_warning)
_SERVICES: tuple[tuple[str, str, int, bool], ...] = (
    ("other", "Any other", 40, False),
    ("google", "Google / Gmail / YouTube", 60, False),
    ("whatsapp", "WhatsApp", 90, True),
    ("telegram", "Telegram", 120, True),
    ("facebook", "Facebook", 35, False),
    ("instagram", "Instagram", 30, False),
    ("twitter", "X (Twitter)", 25, False),
    ("tiktok", "TikTok", 20, False),
    ("microsoft", "Microsoft / Outlook", 25, False),
    ("amazon", "Amazon", 30, False),
    ("apple", "Apple", 45, False),
    ("netflix", "Netflix", 20, False),
    ("uber", "Uber", 25, False),
    ("discord", "Discord", 30, False),
    ("7eleven", "7-Eleven", 15, False),
    ("paypal", "PayPal", 50, True),
    ("ebay", "eBay", 25, False),
    ("yahoo", "Yahoo", 15, False),
    ("linkedin", "LinkedIn", 35, False),
    ("snapchat", "Snapchat", 20, False),
    ("viber", "Viber", 30, False),
    ("wechat", "WeChat", 150, True),
    ("line", "LINE", 40, False),
    ("signal", "Signal", 45, False),
    ("tinder", "Tinder", 40, False),
    ("airbnb", "Airbnb", 30, False),
    ("steam", "Steam", 20, False),
    ("openai", "OpenAI / ChatGPT", 55, False),
    ("spotify", "Spotify", 15, False),
    ("coinbase", "Coinbase", 70, True),
    ("binance", "Binance", 80, True),
    ("alibaba", "Alibaba / AliExpress", 25, False),
)

# (id, name, dialling codes, price multiplier)
_COUNTRIES: tuple[tuple[str, str, tuple[str, ...], float], ...] = (
    ("us", "United States", ("1",), 2.0),
    ("us_v", "United States (Virtual)", ("1",), 0.6),
    ("uk", "United Kingdom", ("44",), 1.8),
    ("ca", "Canada", ("1",), 1.6),
    ("de", "Germany", ("49",), 1.7),
    ("fr", "France", ("33",), 1.6),
    ("nl", "Netherlands", ("31",), 1.5),
    ("es", "Spain", ("34",), 1.3),
    ("it", "Italy", ("39",), 1.3),
    ("pl", "Poland", ("48",), 1.0),
    ("se", "Sweden", ("46",), 1.4),
    ("pt", "Portugal", ("351",), 1.1),
    ("ua", "Ukraine", ("380",), 0.7),
    ("kz", "Kazakhstan", ("7",), 0.6),
    ("tr", "Turkey", ("90",), 0.8),
    ("il", "Israel", ("972",), 1.2),
    ("in", "India", ("91",), 0.5),
    ("id", "Indonesia", ("62",), 0.4),
    ("ph", "Philippines", ("63",), 0.5),
    ("vn", "Vietnam", ("84",), 0.4),
    ("th", "Thailand", ("66",), 0.6),
    ("my", "Malaysia", ("60",), 0.7),
    ("br", "Brazil", ("55",), 0.8),
    ("mx", "Mexico", ("52",), 0.8),
    ("ar", "Argentina", ("54",), 0.7),
    ("co", "Colombia", ("57",), 0.6),
    ("cl", "Chile", ("56",), 0.8),
    ("za", "South Africa", ("27",), 0.7),
    ("ng", "Nigeria", ("234",), 0.5),
    ("eg", "Egypt", ("20",), 0.5),
    ("au", "Australia", ("61",), 1.9),
    ("jp", "Japan", ("81",), 2.2),
)

#: Calling code -> (digits of a national mobile number, the ranges it starts with), from
#: each country's numbering plan: a UK number reads +44 7..., a French one +33 6... or 7...
MOBILE_PLANS: dict[str, tuple[int, tuple[str, ...]]] = {
    "1": (10, ("201", "212", "305", "312", "415", "617", "646", "702", "818", "917")),
    "7": (10, ("700", "701", "702", "705", "707", "747", "771", "775", "777", "778")),
    "20": (10, ("10", "11", "12", "15")),
    "27": (9, ("6", "7", "8")),
    "31": (9, ("6",)),
    "33": (9, ("6", "7")),
    "34": (9, ("6", "7")),
    "39": (10, ("3",)),
    "44": (10, ("7",)),
    "46": (9, ("70", "72", "73", "76", "79")),
    "48": (9, ("5", "6", "7", "8")),
    "49": (11, ("151", "152", "157", "160", "162", "170", "171", "172", "176", "179")),
    "52": (10, ("33", "55", "81")),
    "54": (11, ("911", "9341", "9351")),
    "55": (11, ("119", "219", "319", "419", "519", "619", "719", "819")),
    "56": (9, ("9",)),
    "57": (10, ("30", "31", "32", "35")),
    "60": (9, ("11", "12", "13", "16", "17", "19")),
    "61": (9, ("4",)),
    "62": (11, ("81", "82", "85", "87", "88", "89")),
    "63": (10, ("9",)),
    "66": (9, ("6", "8", "9")),
    "81": (10, ("70", "80", "90")),
    "84": (9, ("3", "5", "7", "8", "9")),
    "90": (10, ("50", "53", "54", "55")),
    "91": (10, ("6", "7", "8", "9")),
    "234": (10, ("70", "80", "81", "90", "91")),
    "351": (9, ("91", "92", "93", "96")),
    "380": (9, ("50", "63", "66", "67", "68", "73", "93", "95", "96", "97")),
    "972": (9, ("50", "52", "53", "54", "55", "58")),
}

_POPULAR = ("google", "whatsapp", "telegram", "facebook", "instagram", "tiktok", "openai", "other")


def default_catalog(seed: int = 0) -> Catalog:
    """A realistic market, the same for the same ``seed``."""
    catalog = Catalog(
        services=(
            Service(sid, name, alt_name=name, has_description=tier > 60, has_warning=warn)
            for sid, name, tier, warn in _SERVICES
        ),
        countries=(Country(cid, name, codes) for cid, name, codes, _ in _COUNTRIES),
        popular=_POPULAR,
    )
    for (sid, cid), specs in _market(seed).items():
        catalog.set_offers(sid, cid, (Offer(*spec) for spec in specs))
    return catalog


_OfferSpec = tuple[int, float, int, bool, int | None]


@functools.lru_cache(maxsize=4)
def _market(seed: int) -> dict[tuple[str, str], tuple[_OfferSpec, ...]]:
    # Drawing ~1000 pairs costs milliseconds; every emulator of a seed shares the draw
    # and builds its own (mutable) offers from it.
    market = {}
    for sid, _, tier, _ in _SERVICES:
        for cid, _, _, factor in _COUNTRIES:
            rng = random.Random(f"{seed}:{sid}:{cid}")
            market[sid, cid] = _random_offers(rng, tier * factor, cid.endswith("_v"))
    return market


def _random_offers(rng: random.Random, base: float, virtual: bool) -> tuple[_OfferSpec, ...]:
    sold_out = rng.random() < 0.04
    offers = []
    for _ in range(rng.randint(1, 3)):
        quality = rng.uniform(0.05, 0.35) if virtual else rng.uniform(0.2, 0.95)
        price = max(1, round(base * rng.uniform(0.7, 1.5) * (0.6 + quality)))
        count = 0 if sold_out else rng.randint(5, 4000)
        retriable = rng.random() < 0.7
        cancel_after = None if rng.random() < 0.1 else 120
        offers.append((price, round(quality, 2), count, retriable, cancel_after))
    return tuple(offers)
