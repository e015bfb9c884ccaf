"""What goes on the wire: the error answer, JSON encoding and the timestamps' form."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["ORDER_NOT_FOUND", "WireError", "dump_json", "unix"]

#: Platfone's ``errorMessage`` for an unknown or stale ``order_id`` (a 404).
ORDER_NOT_FOUND = "Order not found"


class WireError(Exception):
    """An error answer the emulator sends: status, ``errorName``, ``errorMessage``.

    ``extra`` joins the JSON body (``suggestedPrice``/``orderId`` on a 409, ``unblockAt``
    on a block) and ``headers`` the response (``x-ratelimit-reset``).
    """

    def __init__(
        self,
        status: int,
        name: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {name}: {message}")
        self.status = status
        self.name = name
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"errorName": self.name, "errorMessage": self.message, **self.extra}


def bad_request(message: str) -> WireError:
    return WireError(400, "BadRequestException", message)


def not_found(message: str) -> WireError:
    return WireError(404, "NotFoundException", message)


def rate_limited(name: str, message: str, reset_at: float) -> WireError:
    reset = math.ceil(reset_at)
    return WireError(
        429,
        name,
        message,
        extra={"unblockAt": reset} if name == "LowSuccessRateException" else None,
        headers={"x-ratelimit-reset": str(reset)},
    )


def dump_json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def unix(seconds: float) -> int:
    """A timestamp as the API writes it: whole Unix seconds."""
    return math.floor(seconds)
