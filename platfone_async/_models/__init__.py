"""The API's objects, as frozen attrs classes whose fields mirror the JSON names.

Timestamps are aware UTC datetimes, prices integer USD cents. Status fields hold the
enum member; a value the enum does not know yet is kept as a pseudo-member of it.

The activation (``_activation``), the catalog and price lists (``_catalog``), reports
(``_reports``), the balance (``_account``) and a page of a list (``_page``), on what
they share (``_base``).

Annotations are evaluated when each class is created (no ``from __future__ import
annotations``): the public package re-labels these classes' ``__module__``, after which
string annotations could no longer be resolved by cattrs.
"""

from ._account import Balance
from ._activation import Activation
from ._base import ApiModel, api_json, publish
from ._catalog import (
    Country,
    CountryPrice,
    CountryPrices,
    Price,
    PriceInfo,
    Quality,
    Service,
    ServicePrice,
    ServicePrices,
)
from ._page import Page
from ._reports import Report, ReportReason, ReportResult

__all__ = [
    "Activation",
    "ApiModel",
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
    "api_json",
    "publish",
]
