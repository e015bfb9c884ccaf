"""The activation: one rented number and what it has received, the object every flow needs.

No ``from __future__ import annotations`` (see ``_models``).
"""

import datetime as dt

import attrs

from .._enums import ActivationStatus, BillingStatus, ReportStatus, SmsStatus
from ._base import ApiModel

__all__ = ["Activation"]


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
