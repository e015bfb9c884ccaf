"""Webhook signatures: check that a delivery came from the holder of the secret, recently.

The reference names three headers - ``x-webhook-id``, ``x-timestamp``, ``x-signature`` -
but not what is signed. Until Platfone documents it, we read them as the Standard
Webhooks scheme those names follow: the signature is HMAC-SHA256, keyed with the
webhook secret (its UTF-8 bytes), over ``"{x-webhook-id}.{x-timestamp}.{raw body}"``
(:func:`signing_string`, the one place to change if Platfone says otherwise). It may be
sent as hex or base64, with or without a ``v1,`` prefix, and several signatures may be
sent space-separated (a sender rotating its key signs with both). The timestamp must be
within ``tolerance`` seconds of now, either way, so a captured delivery cannot be
replayed later.

What is checked is the body exactly as received: JSON parsed and serialized again
(different spacing or key order) no longer matches its signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from .._errors import InvalidParameterError, WebhookVerificationError

__all__ = [
    "DEFAULT_TOLERANCE",
    "check_tolerance",
    "secrets_of",
    "sign",
    "signed_headers",
    "signing_string",
    "verify",
]

#: Seconds a delivery's ``x-timestamp`` may lie before or after now.
DEFAULT_TOLERANCE = 300.0

_ID_HEADER = "x-webhook-id"
_TIMESTAMP_HEADER = "x-timestamp"
_SIGNATURE_HEADER = "x-signature"
_VERSION = "v1"
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
_TIMESTAMP = re.compile(r"^\d{1,15}(\.\d{1,9})?$")
_DIGEST_SIZE = hashlib.sha256().digest_size


def signing_string(webhook_id: str, timestamp: str, body: bytes) -> bytes:
    """What is signed: ``"{x-webhook-id}.{x-timestamp}.{raw body}"`` (our reading)."""
    return f"{webhook_id}.{timestamp}.".encode() + body


def secrets_of(secret: str | Sequence[str]) -> tuple[bytes, ...]:
    """The HMAC keys for ``secret`` (one, or several while rotating); checks each."""
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    if not secrets:
        raise InvalidParameterError("secret", "give at least one webhook secret", "()")
    for each in secrets:
        if not isinstance(each, str):
            raise InvalidParameterError("secret", "must be a str", type(each).__name__)
        if not each:
            raise InvalidParameterError("secret", "must not be empty", "")
    return tuple(each.encode() for each in secrets)


def _digest(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def sign(
    body: bytes,
    secret: str,
    *,
    webhook_id: str,
    timestamp: int | str,
    encoding: Literal["hex", "base64"] = "hex",
) -> str:
    """The signature :func:`verify` accepts for ``body`` (without a ``v1,`` prefix)."""
    (key,) = secrets_of(secret)
    digest = _digest(key, signing_string(webhook_id, str(timestamp), _raw(body)))
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")


def signed_headers(
    body: bytes,
    secret: str,
    *,
    webhook_id: str,
    timestamp: int | str,
    encoding: Literal["hex", "base64"] = "hex",
) -> dict[str, str]:
    """The three headers of a delivery of ``body`` (for tests and the emulator)."""
    signature = sign(body, secret, webhook_id=webhook_id, timestamp=timestamp, encoding=encoding)
    return {
        _ID_HEADER: webhook_id,
        _TIMESTAMP_HEADER: str(timestamp),
        _SIGNATURE_HEADER: signature,
    }


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check that ``body`` was signed with ``secret`` within ``tolerance`` seconds of now.

    ``body`` is the raw request body, byte for byte; ``headers`` are looked up
    case-insensitively. ``secret`` may be several secrets (any one may match) while you
    rotate yours. ``now`` defaults to :func:`time.time`.

    Raises:
        WebhookVerificationError: The message says which check failed - a missing
            header, a timestamp that is malformed, too old or too new, or no
            signature that matches - and never more than that.
    """
    keys = secrets_of(secret)
    tolerance = check_tolerance(tolerance)
    found = _lower_keys(headers)
    webhook_id = _header(found, _ID_HEADER)
    timestamp = _header(found, _TIMESTAMP_HEADER)
    signatures = _header(found, _SIGNATURE_HEADER)
    _check_age(_timestamp(timestamp), time.time() if now is None else now, tolerance)
    message = signing_string(webhook_id, timestamp, _raw(body))
    if not _any_match(keys, message, _candidates(signatures)):
        raise _failed(f"no signature in {_SIGNATURE_HEADER} matches the body")


def _failed(message: str) -> WebhookVerificationError:
    return WebhookVerificationError(message)


def _raw(body: object) -> bytes:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(
        f"the webhook body must be the raw bytes as received, not {type(body).__name__} "
        "(text or re-serialized JSON no longer matches its signature)"
    )


def check_tolerance(tolerance: object) -> float:
    """``tolerance`` as a float, or :class:`InvalidParameterError` unless finite and >= 0."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise InvalidParameterError("tolerance", "must be a number of seconds", tolerance)
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InvalidParameterError("tolerance", "must be finite and >= 0", tolerance)
    return float(tolerance)


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers by lower-case name; a name repeated (several header lines, as a
    multi-dict's ``items()`` gives them) keeps every value, space-separated."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = str(name).lower()
        found[key] = f"{found[key]} {value}" if key in found else value
    return found


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None or not str(value).strip():
        raise _failed(f"the {name} header is missing")
    return str(value).strip()


def _timestamp(text: str) -> float:
    if not _TIMESTAMP.match(text):
        raise _failed(f"the {_TIMESTAMP_HEADER} header is not a Unix time in seconds")
    return float(text)


def _check_age(sent_at: float, now: float, tolerance: float) -> None:
    if now - sent_at > tolerance:
        raise _failed(
            f"the {_TIMESTAMP_HEADER} is too old: {now - sent_at:.0f} s ago, "
            f"beyond the {tolerance:g} s tolerance"
        )
    if sent_at - now > tolerance:
        raise _failed(
            f"the {_TIMESTAMP_HEADER} is too new: {sent_at - now:.0f} s in the future, "
            f"beyond the {tolerance:g} s tolerance"
        )


def _candidates(header: str) -> list[bytes]:
    """The digests an ``x-signature`` header offers; tokens that decode to none are dropped.

    Tokens are space-separated, each ``v1,<signature>`` or a bare signature; a token of
    another version (``v1a,`` is Standard Webhooks' asymmetric one) is not ours to check.
    Several header lines come space-separated (see :func:`_lower_keys`) or, from a
    framework that folds them as HTTP says, comma-separated: a trailing comma is dropped.
    """
    found = []
    for token in header.split():
        version, comma, signature = token.rstrip(",").rpartition(",")
        if comma and version != _VERSION:
            continue
        digest = _decode_signature(signature)
        if digest is not None:
            found.append(digest)
    return found


def _decode_signature(text: str) -> bytes | None:
    if _HEX_DIGEST.match(text):
        return bytes.fromhex(text)
    standard = text.replace("-", "+").replace("_", "/")
    standard += "=" * (-len(standard) % 4)
    try:
        digest = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == _DIGEST_SIZE else None


def _any_match(keys: Iterable[bytes], message: bytes, candidates: Sequence[bytes]) -> bool:
    # Every pair is compared, in constant time each: how long this takes tells nothing
    # about which byte of which signature differs.
    matched = False
    for key in keys:
        expected = _digest(key, message)
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    return matched
