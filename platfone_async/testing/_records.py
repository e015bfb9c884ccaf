"""The emulator's stored state: accounts, activations, reports, order tokens, events."""

from __future__ import annotations

import json
from typing import Any

import attrs

from ._catalog import Offer

__all__ = [
    "Account",
    "ActivationRecord",
    "EmulatorEvent",
    "OrderToken",
    "ReportRecord",
    "RequestRecord",
]

# The reference's status values, as the wire spells them.
SMS_REQUESTED = "smsRequested"
SMS_RECEIVED = "smsReceived"
RETRY_REQUESTED = "retryRequested"
RETRY_RECEIVED = "retryReceived"
ACTIVE = "active"
FINALIZED = "finalized"
EXPIRED = "expired"
CANCELED = "canceled"
RESERVED = "reserved"
RELEASED = "released"
BILLED = "billed"
REFUNDED = "refunded"
IN_REVIEW = "inReview"
DECLINED = "declined"
APPROVED = "approved"


@attrs.frozen
class EmulatorEvent:
    """Something a webhook would announce: passed to every listener as it happens.

    ``type`` is a webhook event type (``activation.updated`` when an SMS arrives,
    ``activation_report.updated`` when a report's status changes,
    ``account.low_balance`` when the available balance drops below the threshold);
    ``data`` is the JSON a webhook would carry.
    """

    type: str
    api_key: str = attrs.field(repr=False)
    data: dict[str, Any]
    time: float


@attrs.define
class Account:
    api_key: str = attrs.field(repr=False)
    total: int
    reserved: int = 0
    email_verified: bool = True
    on_hold: bool = False
    blocked_until: float | None = None
    success_rate_since: float = float("-inf")
    low_balance: bool = False
    active_ids: set[str] = attrs.Factory(set)
    activation_ids: list[str] = attrs.Factory(list)
    report_ids: list[str] = attrs.Factory(list)

    @property
    def available(self) -> int:
        return self.total - self.reserved

    def balance_json(self) -> dict[str, Any]:
        return {"total": self.total, "reserved": self.reserved}


@attrs.define
class ActivationRecord:
    activation_id: str
    api_key: str = attrs.field(repr=False)
    service_id: str
    country_id: str
    phone: str
    price: int
    created_at: int
    updated_at: int
    expire_at: int
    cancelable_after: int | None
    is_retriable: bool
    sms_status: str = SMS_REQUESTED
    activation_status: str = ACTIVE
    billing_status: str = RESERVED
    report_status: str | None = None
    sms_code: str | None = None
    sms_text: str | None = None
    # How many times it has started waiting for an SMS (0: the first one); an
    # automatic delivery promised for an earlier wait is stale.
    sms_round: int = 0
    received_sms: bool = False
    # The quality of the offer it was sold from (a market's SMS odds follow it).
    quality: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "activation_id": self.activation_id,
            "price": self.price,
            "phone": self.phone,
            "country_id": self.country_id,
            "service_id": self.service_id,
            "sms_status": self.sms_status,
            "activation_status": self.activation_status,
            "billing_status": self.billing_status,
            "report_status": self.report_status,
            "sms_code": self.sms_code,
            "sms_text": self.sms_text,
            "expire_at": self.expire_at,
            "updated_at": self.updated_at,
            "created_at": self.created_at,
            "is_retriable": self.is_retriable,
            "cancelable_after": self.cancelable_after,
        }

    def snapshot(self) -> str:
        """The ``activation_state_snapshot`` a report keeps (a JSON string)."""
        return json.dumps(
            {
                "activation_status": self.activation_status,
                "sms_status": self.sms_status,
                "billing_status": self.billing_status,
                "sms_code": self.sms_code,
                "sms_text": self.sms_text,
                "updated_at": self.updated_at,
            },
            separators=(",", ":"),
        )


@attrs.define
class ReportRecord:
    activation_id: str
    reason_id: int
    reason_name: str
    message: str | None
    activation_state_snapshot: str
    created_at: int
    updated_at: int
    status: str
    decline_id: int | None = None
    evidence: bytes | None = attrs.field(default=None, repr=False)
    evidence_filename: str | None = None


@attrs.define
class OrderToken:
    """A 409's ``orderId``: the order attempt it continues and the offer it found."""

    order_id: str
    api_key: str = attrs.field(repr=False)
    service_id: str
    country_id: str
    quality_factor: float
    offer: Offer
    created_at: float
    used_by: str | None = None


@attrs.define
class RequestRecord:
    """One request the emulator received, in arrival order.

    ``route`` is the SDK method name of the endpoint (``"create_activation"``...) or
    ``"unknown"``; ``status`` is what was answered (``None``: the connection dropped);
    ``fault`` the injected fault that met it, if any.
    """

    time: float
    method: str
    path: str
    route: str
    api_key: str | None = attrs.field(repr=False)
    status: int | None = None
    fault: Any = None

    def to_json(self) -> dict[str, Any]:
        """The record for the control API; the key is shown by its last 4 characters."""
        key = self.api_key
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "api_key": None if key is None else f"...{key[-4:]}",
            "status": self.status,
            "fault": attrs.asdict(self.fault) if attrs.has(type(self.fault)) else None,
        }
