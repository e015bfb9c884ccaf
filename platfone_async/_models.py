"""The API's objects, as frozen attrs classes whose fields mirror the JSON names.

Timestamps are aware UTC datetimes, prices integer USD cents. Status fields hold the
enum member, or the plain string when the API sends a value the enum does not know yet.

Annotations are evaluated when each class is created (no ``from __future__ import
annotations``): the public package re-labels these classes' ``__module__``, after which
string annotations could no longer be resolved by cattrs.
"""

import datetime as dt
from typing import Generic, TypeVar

import attrs

from ._enums import ActivationStatus, BillingStatus, ReportResultStatus, ReportStatus, SmsStatus

__all__ = [
    "Activation",
    "Balance",
    "Country",
    "CountryPrice",
    "CountryPrices",
    "Page",
    "Price",
    "PriceInfo",
    "Quality",
    "Report",
    "ReportReason",
    "ReportResult",
    "Service",
    "ServicePrice",
    "ServicePrices",
]

T = TypeVar("T")

_SMS_ARRIVED = frozenset({SmsStatus.SMS_RECEIVED, SmsStatus.RETRY_RECEIVED})


@attrs.frozen
class Activation:
    """One rented number and what it has received."""

    activation_id: str
    phone: str
    country_id: str
    service_id: str
    price: int
    sms_status: SmsStatus | str
    activation_status: ActivationStatus | str
    billing_status: BillingStatus | str
    expire_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    report_status: ReportStatus | str | None = None
    sms_code: str | None = None
    sms_text: str | None = None
    is_retriable: bool = False
    cancelable_after: dt.datetime | None = None

    @property
    def sms_received(self) -> bool:
        """Whether the latest SMS requested has arrived (``smsReceived``/``retryReceived``)."""
        return self.sms_status in _SMS_ARRIVED

    @property
    def is_active(self) -> bool:
        """Whether the activation is still ``active`` by its status."""
        return self.activation_status == ActivationStatus.ACTIVE


@attrs.frozen
class Price:
    """A price range in USD cents."""

    min: int
    max: int
    suggested: int


@attrs.frozen
class Quality:
    """The supplier quality behind an offer."""

    avg: float


@attrs.frozen
class PriceInfo:
    """Price and stock for one service in one country."""

    price: Price
    quality: Quality
    count: int


@attrs.frozen
class ServicePrice:
    """A service's price and stock, inside a country's price list."""

    service_id: str
    price: Price
    quality: Quality
    count: int


@attrs.frozen
class CountryPrices:
    """One country and the prices of the services available there."""

    country_id: str
    services: list[ServicePrice]


@attrs.frozen
class CountryPrice:
    """A country's price and stock, inside a service's price list."""

    country_id: str
    price: Price
    quality: Quality
    count: int


@attrs.frozen
class ServicePrices:
    """One service and its prices in each country where it is available."""

    service_id: str
    countries: list[CountryPrice]


@attrs.frozen
class Country:
    """A country numbers can be ordered in (``_v`` suffix: virtual numbers only)."""

    country_id: str
    name: str
    alt_name: str | None = None
    codes: list[str] = attrs.field(factory=list)


@attrs.frozen
class Service:
    """A service numbers can be ordered for (``other`` for anything not listed)."""

    service_id: str
    name: str
    alt_name: str | None = None
    has_description: bool = False
    has_warning: bool = False
    prohibited: bool | None = None


@attrs.frozen
class Balance:
    """The account balance in USD cents."""

    total: int
    reserved: int

    @property
    def available(self) -> int:
        """What can still be spent: ``total - reserved``."""
        return self.total - self.reserved


@attrs.frozen
class ReportReason:
    """A reason a report may be filed for, given the activation's state."""

    reason_id: int
    reason_name: str
    evidence_required: bool = False


@attrs.frozen
class ReportResult:
    """The answer to ``create_report``: accepted, or declined with a ``decline_id``."""

    status: ReportResultStatus | str
    decline_id: int | None = None


@attrs.frozen
class Report:
    """A report filed for an activation, with the activation as it is now."""

    reason_id: int
    reason_name: str
    created_at: dt.datetime
    updated_at: dt.datetime
    activation: Activation
    message: str | None = None
    activation_state_snapshot: str | None = None


@attrs.frozen
class Page(Generic[T]):
    """One page of a paginated list."""

    items: list[T]
    page: int
    limit: int
    pages: int
    total: int
