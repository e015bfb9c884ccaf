"""The API's objects, as frozen attrs classes whose fields mirror the JSON names.

Timestamps are aware UTC datetimes, prices integer USD cents. Status fields hold the
enum member; a value the enum does not know yet is kept as a pseudo-member of it.

Here is the object every flow needs, the activation. The others are modules of their
own, loaded when first used: the catalog and price lists (``_catalog``), reports
(``_reports``), the balance (``_account``) and a page of a list (``_page``). An attrs
class costs about half a millisecond to create; those fourteen would be a third of
``import platfone_async``.

Annotations are evaluated when each class is created (no ``from __future__ import
annotations``): the public package re-labels these classes' ``__module__``, after which
string annotations could no longer be resolved by cattrs.
"""

import datetime as dt
import enum
import json
import math
from collections.abc import Mapping
from typing import Any

import attrs

from .._enums import ActivationStatus, BillingStatus, ReportStatus, SmsStatus

__all__ = ["Activation", "ApiModel", "api_json", "publish"]


def api_json(value: object) -> Any:
    """``value`` as the API's JSON: its field names, timestamps as Unix seconds, statuses
    as their strings, prices in cents (as they are); ``NaN`` and infinities as null."""
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))  # type: ignore[arg-type]
        return {f.name: api_json(getattr(value, f.name)) for f in fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): api_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [api_json(v) for v in value]
    return value


class ApiModel:
    """What every public model offers: itself as the API's JSON."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """This object as the API sends it: the same field names, timestamps as Unix
        seconds, statuses as their strings, prices in cents. The SDK decodes it back to
        an equal object."""
        result: dict[str, Any] = api_json(self)
        return result

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string (``indent``: as ``json.dumps``)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def publish(*classes: type) -> None:
    """Show ``classes`` by their public path (``platfone_async.Country``) in reprs,
    tracebacks and pickles, as the package does for the names it imports eagerly."""
    for cls in classes:
        cls.__module__ = "platfone_async"


_SMS_ARRIVED = frozenset({SmsStatus.SMS_RECEIVED, SmsStatus.RETRY_RECEIVED})


@attrs.frozen
class Activation(ApiModel):
    """One rented number and what it has received."""

    activation_id: str
    phone: str
    country_id: str
    service_id: str
    price: int
    sms_status: SmsStatus
    activation_status: ActivationStatus
    billing_status: BillingStatus
    expire_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    report_status: ReportStatus | None = None
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
