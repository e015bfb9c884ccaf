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

from __future__ import annotations

from typing import TYPE_CHECKING

from .._enums import WebhookEventType
from .._errors import WebhookVerificationError

if TYPE_CHECKING:
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

# The watchers import the push hub (``_push``) with the client; the rest of this package
# (events, handler, signatures) loads on first use, so `import platfone_async` stays light.
_HOMES = {
    **dict.fromkeys(
        [
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
        ],
        "._events",
    ),
    **dict.fromkeys(["ALL_EVENTS", "ASGIApp", "WebhookHandler", "webhook_app"], "._handler"),
    **dict.fromkeys(
        ["DEFAULT_TOLERANCE", "sign", "signed_headers", "signing_string", "verify"],
        "._signature",
    ),
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(home, __name__)
    for public, where in _HOMES.items():
        if where == home:
            value = getattr(module, public)
            if isinstance(value, type) and value.__module__.startswith(__name__ + "._"):
                # Reprs, tracebacks and docs show the public path, not the private module.
                value.__module__ = __name__
            globals()[public] = value
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
