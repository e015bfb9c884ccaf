"""Webhook payloads as typed events: one frozen class per event type, and ``parse_event``.

The payload is ``{"id", "api_version", "type", "data"}``; ``data`` is read by type with
the SDK's converter (tolerant enums, unknown fields ignored). A type the SDK does not
know yet is kept as :class:`UnknownWebhookEvent`, never rejected. A body that is not
such JSON raises :class:`WebhookPayloadError` (a ``ValueError``): it is a bad request,
not a failed signature.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar, TypeAlias

import attrs

from .._convert import decode
from .._enums import ReportStatus, WebhookEventType
from .._errors import ResponseDecodeError, WebhookPayloadError
from .._models import Activation

__all__ = [
    "AccountLowBalance",
    "ActivationReportUpdated",
    "ActivationUpdated",
    "AlternativeActivationUpdated",
    "LowBalance",
    "ReportUpdate",
    "UnknownWebhookEvent",
    "WebhookEvent",
    "WebhookPayloadError",
    "parse_event",
]


@attrs.frozen
class ReportUpdate:
    """The data of ``activation_report.updated``: a report's new status.

    Read tolerantly, as the reference's example is an activation with a
    ``report_status``: ``activation`` is the activation when the payload carries one
    (nested under ``activation`` or as the payload itself), else None.
    """

    activation_id: str
    report_status: ReportStatus | None
    decline_id: int | None = None
    activation: Activation | None = None


@attrs.frozen
class LowBalance:
    """The data of ``account.low_balance``: the balance in USD cents that fell below the
    account's threshold (``total`` and ``reserved`` too, when sent)."""

    balance: int
    total: int | None = None
    reserved: int | None = None


@attrs.frozen
class ActivationUpdated:
    """``activation.updated``: an activation's SMS arrived (``smsReceived``/``retryReceived``)."""

    type: ClassVar[WebhookEventType] = WebhookEventType.ACTIVATION_UPDATED
    id: str
    api_version: str
    data: Activation
    #: The whole payload as parsed JSON, for fields the SDK does not model.
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class AlternativeActivationUpdated:
    """``alternative.activation.updated``: the same, for an alternative activation."""

    type: ClassVar[WebhookEventType] = WebhookEventType.ALTERNATIVE_ACTIVATION_UPDATED
    id: str
    api_version: str
    data: Activation
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class ActivationReportUpdated:
    """``activation_report.updated``: a report on an activation was reviewed."""

    type: ClassVar[WebhookEventType] = WebhookEventType.ACTIVATION_REPORT_UPDATED
    id: str
    api_version: str
    data: ReportUpdate
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class AccountLowBalance:
    """``account.low_balance``: the balance fell below the account's threshold."""

    type: ClassVar[WebhookEventType] = WebhookEventType.ACCOUNT_LOW_BALANCE
    id: str
    api_version: str
    data: LowBalance
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class UnknownWebhookEvent:
    """An event type this SDK does not know yet: kept, with its ``data`` as parsed JSON."""

    type: str
    id: str
    api_version: str
    data: Any
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


#: What :func:`parse_event` returns: one class per event type (``isinstance`` tells
#: which), each with ``.id``, ``.api_version``, ``.type`` and ``.data``.
WebhookEvent: TypeAlias = (
    ActivationUpdated
    | AlternativeActivationUpdated
    | ActivationReportUpdated
    | AccountLowBalance
    | UnknownWebhookEvent
)


def parse_event(body: bytes | str) -> WebhookEvent:
    """Read a webhook payload (verify it first) as its typed event.

    An event type the SDK does not know is kept as :class:`UnknownWebhookEvent`.

    Raises:
        WebhookPayloadError: The body is not JSON, lacks ``id`` or ``type``, or its
            ``data`` does not fit the event's type.
    """
    document = _load(body)
    event_id = _text_field(document, "id")
    event_type = _text_field(document, "type")
    api_version = _text_field(document, "api_version", required=False)
    data = document.get("data")
    if event_type == WebhookEventType.ACTIVATION_UPDATED:
        return ActivationUpdated(event_id, api_version, _activation(data, "$.data"), document)
    if event_type == WebhookEventType.ALTERNATIVE_ACTIVATION_UPDATED:
        activation = _activation(data, "$.data")
        return AlternativeActivationUpdated(event_id, api_version, activation, document)
    if event_type == WebhookEventType.ACTIVATION_REPORT_UPDATED:
        return ActivationReportUpdated(event_id, api_version, _report_update(data), document)
    if event_type == WebhookEventType.ACCOUNT_LOW_BALANCE:
        return AccountLowBalance(event_id, api_version, _low_balance(data), document)
    return UnknownWebhookEvent(event_type, event_id, api_version, data, document)


def _load(body: bytes | str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, TypeError) as error:  # UnicodeDecodeError is a ValueError
        raise WebhookPayloadError(f"the webhook body is not JSON: {error}", path="$") from None
    if not isinstance(document, dict):
        raise WebhookPayloadError("the webhook body is not a JSON object", path="$")
    return document


def _text_field(document: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = document.get(name)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if value is None and not required:
        return ""
    raise WebhookPayloadError(f"the webhook event has no {name} string", path=f"$.{name}")


def _activation(data: object, path: str) -> Activation:
    if not isinstance(data, Mapping):
        raise WebhookPayloadError("the webhook's activation is not an object", path=path)
    activation: Activation = _decode(data, Activation, path)
    return activation


def _decode(data: object, cl: type[Any], path: str) -> Any:
    try:
        return decode(data, cl, status_code=200, text="", root=path)
    except ResponseDecodeError as error:
        reason = str(error).split(": ", 1)[-1].split(" @ ")[0]
        where = f" at {error.path}" if error.path else ""
        raise WebhookPayloadError(
            f"the webhook data does not fit {cl.__name__}: {reason}{where}", path=error.path
        ) from None


def _object(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise WebhookPayloadError(f"the {what} event's data is not an object", path="$.data")
    return data


def _report_update(data: object) -> ReportUpdate:
    fields = _object(data, "activation_report.updated")
    activation: Activation | None = None
    if isinstance(fields.get("activation"), Mapping):
        activation = _activation(fields["activation"], "$.data.activation")
    elif "sms_status" in fields:
        activation = _activation(fields, "$.data")
    merged = {
        "activation_id": activation.activation_id if activation else None,
        "report_status": activation.report_status if activation else None,
        **{k: v for k, v in fields.items() if k != "activation"},
    }
    update: ReportUpdate = _decode(merged, ReportUpdate, "$.data")
    return attrs.evolve(update, activation=activation)


def _low_balance(data: object) -> LowBalance:
    fields = dict(_object(data, "account.low_balance"))
    if fields.get("balance") is None and "total" in fields and "reserved" in fields:
        # Not numbers: the decoder below says so, with the path.
        with contextlib.suppress(TypeError, ValueError):
            fields["balance"] = int(fields["total"]) - int(fields["reserved"])
    decoded: LowBalance = _decode(fields, LowBalance, "$.data")
    return decoded


for _cls in (
    ReportUpdate,
    LowBalance,
    ActivationUpdated,
    AlternativeActivationUpdated,
    ActivationReportUpdated,
    AccountLowBalance,
    UnknownWebhookEvent,
):
    attrs.resolve_types(_cls)
del _cls
