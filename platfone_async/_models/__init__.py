"""The API's objects, as frozen attrs classes whose fields mirror the JSON names.

Timestamps are aware UTC datetimes, prices integer USD cents. Status fields hold the
enum member, or the plain string when the API sends a value the enum does not know yet.

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

import attrs

from .._enums import ActivationStatus, BillingStatus, ReportStatus, SmsStatus

__all__ = ["Activation", "publish"]


def publish(*classes: type) -> None:
    """Show ``classes`` by their public path (``platfone_async.Country``) in reprs,
    tracebacks and pickles, as the package does for the names it imports eagerly."""
    for cls in classes:
        cls.__module__ = "platfone_async"


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
