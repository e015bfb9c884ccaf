"""The API's status values as ``str`` enums that keep values they do not know.

"The API is subject to change without notice": a value an enum does not list yet
becomes a pseudo-member of it (``SmsStatus("smsDelayed")``, made by ``_missing_``),
so a status field is typed ``SmsStatus`` - IDEs complete its members - and an unknown
value still compares equal to its string, prints as it, and survives cattrs, JSON and
pickle. ``list(SmsStatus)`` shows only the documented members.
"""

from __future__ import annotations

import enum

__all__ = [
    "OpenStrEnum",
    "ActivationStatus",
    "BillingStatus",
    "ReportResultStatus",
    "ReportStatus",
    "SmsStatus",
    "WebhookEventType",
]


class OpenStrEnum(str, enum.Enum):
    """A ``str`` enum whose unknown values become pseudo-members instead of errors."""

    @classmethod
    def _missing_(cls, value: object) -> OpenStrEnum | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Whether the value is one the enum lists (not one the API added since)."""
        return self._name_ in type(self).__members__

    def __str__(self) -> str:
        return str(self.value)


class SmsStatus(OpenStrEnum):
    """Where the SMS side of an activation is."""

    SMS_REQUESTED = "smsRequested"
    SMS_RECEIVED = "smsReceived"
    RETRY_REQUESTED = "retryRequested"
    RETRY_RECEIVED = "retryReceived"


class ActivationStatus(OpenStrEnum):
    """The lifecycle of an activation."""

    ACTIVE = "active"
    FINALIZED = "finalized"
    EXPIRED = "expired"
    CANCELED = "canceled"


class BillingStatus(OpenStrEnum):
    """What happened to the money reserved for an activation."""

    RESERVED = "reserved"
    RELEASED = "released"
    BILLED = "billed"
    REFUNDED = "refunded"


class ReportStatus(OpenStrEnum):
    """The review state of a report (``None`` on an activation means no report)."""

    IN_REVIEW = "inReview"
    DECLINED = "declined"
    APPROVED = "approved"


class ReportResultStatus(OpenStrEnum):
    """The immediate answer to ``create_report``."""

    ACCEPTED = "accepted"
    DECLINED = "declined"


class WebhookEventType(OpenStrEnum):
    """The webhook event types the reference lists."""

    ACCOUNT_LOW_BALANCE = "account.low_balance"
    ACTIVATION_UPDATED = "activation.updated"
    ACTIVATION_REPORT_UPDATED = "activation_report.updated"
    ALTERNATIVE_ACTIVATION_UPDATED = "alternative.activation.updated"
