"""The API's status values as ``str`` enums.

A value the enum does not know yet is kept as the plain string by the converter
("the API is subject to change without notice"), so status fields are typed
``SmsStatus | str`` and so on.
"""

from __future__ import annotations

import enum

__all__ = [
    "ActivationStatus",
    "BillingStatus",
    "ReportResultStatus",
    "ReportStatus",
    "SmsStatus",
    "WebhookEventType",
]


class SmsStatus(str, enum.Enum):
    """Where the SMS side of an activation is."""

    SMS_REQUESTED = "smsRequested"
    SMS_RECEIVED = "smsReceived"
    RETRY_REQUESTED = "retryRequested"
    RETRY_RECEIVED = "retryReceived"

    def __str__(self) -> str:
        return self.value


class ActivationStatus(str, enum.Enum):
    """The lifecycle of an activation."""

    ACTIVE = "active"
    FINALIZED = "finalized"
    EXPIRED = "expired"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value


class BillingStatus(str, enum.Enum):
    """What happened to the money reserved for an activation."""

    RESERVED = "reserved"
    RELEASED = "released"
    BILLED = "billed"
    REFUNDED = "refunded"

    def __str__(self) -> str:
        return self.value


class ReportStatus(str, enum.Enum):
    """The review state of a report (``None`` on an activation means no report)."""

    IN_REVIEW = "inReview"
    DECLINED = "declined"
    APPROVED = "approved"

    def __str__(self) -> str:
        return self.value


class ReportResultStatus(str, enum.Enum):
    """The immediate answer to ``create_report``."""

    ACCEPTED = "accepted"
    DECLINED = "declined"

    def __str__(self) -> str:
        return self.value


class WebhookEventType(str, enum.Enum):
    """The webhook event types the reference lists."""

    ACCOUNT_LOW_BALANCE = "account.low_balance"
    ACTIVATION_UPDATED = "activation.updated"
    ACTIVATION_REPORT_UPDATED = "activation_report.updated"
    ALTERNATIVE_ACTIVATION_UPDATED = "alternative.activation.updated"

    def __str__(self) -> str:
        return self.value
