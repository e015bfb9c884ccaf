"""The catalog and the price lists: countries, services, prices, quality, stock.

No ``from __future__ import annotations`` (see ``_models``).
"""

import attrs

from ._base import ApiModel, publish

__all__ = [
    "Country",
    "CountryPrice",
    "CountryPrices",
    "Price",
    "PriceInfo",
    "Quality",
    "Service",
    "ServicePrice",
    "ServicePrices",
]


@attrs.frozen
class Price(ApiModel):
    """A price range in USD cents."""

    min: int
    max: int
    suggested: int


@attrs.frozen
class Quality(ApiModel):
    """The supplier quality behind an offer."""

    avg: float


@attrs.frozen
class PriceInfo(ApiModel):
    """Price and stock for one service in one country."""

    price: Price
    quality: Quality
    count: int


@attrs.frozen
class ServicePrice(ApiModel):
    """A service's price and stock, inside a country's price list."""

    service_id: str
    price: Price
    quality: Quality
    count: int


@attrs.frozen
class CountryPrices(ApiModel):
    """One country and the prices of the services available there."""

    country_id: str
    services: list[ServicePrice]


@attrs.frozen
class CountryPrice(ApiModel):
    """A country's price and stock, inside a service's price list."""

    country_id: str
    price: Price
    quality: Quality
    count: int


@attrs.frozen
class ServicePrices(ApiModel):
    """One service and its prices in each country where it is available."""

    service_id: str
    countries: list[CountryPrice]


@attrs.frozen
class Country(ApiModel):
    """A country numbers can be ordered in (``_v`` suffix: virtual numbers only)."""

    country_id: str
    name: str
    alt_name: str | None = None
    codes: list[str] = attrs.field(factory=list)


@attrs.frozen
class Service(ApiModel):
    """A service numbers can be ordered for (``other`` for anything not listed)."""

    service_id: str
    name: str
    alt_name: str | None = None
    has_description: bool = False
    has_warning: bool = False
    prohibited: bool | None = None


# Loaded on first use, maybe by a client method before the package's name: label here.
publish(Price, Quality, PriceInfo, ServicePrice, CountryPrices, CountryPrice, ServicePrices)
publish(Country, Service)
