"""The API's objects, as frozen attrs classes whose fields mirror the JSON names.

Timestamps are aware UTC datetimes, prices integer USD cents. Status fields hold the
enum member; a value the enum does not know yet is kept as a pseudo-member of it.

The activation (``_activation``), the balance (``_account``) and a page of a list
(``_page``), on what they share (``_base``), are here. The catalog and price lists
(``_catalog``) and reports (``_reports``) are imported from their modules: they load
with the first use of one of their names (see ``platfone_async``).

Annotations are evaluated when each class is created (no ``from __future__ import
annotations``): the public package re-labels these classes' ``__module__``, after which
string annotations could no longer be resolved by cattrs.
"""

from ._account import Balance
from ._activation import Activation
from ._base import ApiModel, api_json, publish
from ._page import Page

__all__ = ["Activation", "ApiModel", "Balance", "Page", "api_json", "publish"]
