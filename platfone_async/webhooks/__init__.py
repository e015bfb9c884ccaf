"""Platfone's webhooks: verify a delivery, read it as a typed event, react to it.

    from platfone_async.webhooks import WebhookHandler

    handler = WebhookHandler(secret, client=client)  # wakes client's watchers at once

    @handler.on("activation.updated")
    async def sms_arrived(event: ActivationUpdated) -> None:
        print(event.data.activation_id, event.data.sms_code)

    app = handler.asgi_app()  # mount in Starlette/FastAPI, or serve with uvicorn

Or by hand: ``verify(body, headers, secret)`` then ``parse_event(body)``.

The signature scheme is our reading of the reference's headers until Platfone
documents it: HMAC-SHA256 with the secret over ``"{x-webhook-id}.{x-timestamp}.{body}"``
(see :func:`signing_string`).
"""

from .._enums import WebhookEventType
from .._errors import WebhookVerificationError
from ._events import (
    AccountLowBalance,
    ActivationReportUpdated,
    ActivationUpdated,
    AlternativeActivationUpdated,
    LowBalance,
    ReportUpdate,
    UnknownWebhookEvent,
    WebhookEvent,
    WebhookPayloadError,
    parse_event,
)
from ._handler import ALL_EVENTS, ASGIApp, WebhookHandler, webhook_app
from ._signature import DEFAULT_TOLERANCE, sign, signed_headers, signing_string, verify

__all__ = [
    "ALL_EVENTS",
    "DEFAULT_TOLERANCE",
    "ASGIApp",
    "AccountLowBalance",
    "ActivationReportUpdated",
    "ActivationUpdated",
    "AlternativeActivationUpdated",
    "LowBalance",
    "ReportUpdate",
    "UnknownWebhookEvent",
    "WebhookEvent",
    "WebhookEventType",
    "WebhookHandler",
    "WebhookPayloadError",
    "WebhookVerificationError",
    "parse_event",
    "sign",
    "signed_headers",
    "signing_string",
    "verify",
    "webhook_app",
]

for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and _value.__module__.startswith(__name__ + "._"):
        # Reprs, tracebacks and docs show the public path, not the private module.
        _value.__module__ = __name__
del _name, _value
