"""Argument checks against the reference's documented ranges, run before any request.

Each check returns the value to send (normalized where that is harmless) or raises
:class:`InvalidParameterError` naming the parameter and the rule.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import IO, Literal, Union

from ._errors import InvalidParameterError

__all__ = [
    "EVIDENCE_MAX_BYTES",
    "Evidence",
    "Prefer",
    "activation_id",
    "country_id",
    "country_ids",
    "evidence_file",
    "int_in_range",
    "max_price",
    "message",
    "order_id",
    "prefer",
    "quality_factor",
    "service_id",
]

#: What ``create_report(evidence=...)`` accepts: the bytes, a path, or a binary file.
Evidence = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]

EVIDENCE_MAX_BYTES = 5 * 1024 * 1024

# The reference's own example ``7eleven`` breaks its documented pattern (a leading
# digit), so we read it as: letters, digits, ".", "-", "_", starting and ending
# with a letter or digit.
_SERVICE_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_COUNTRY_ID = re.compile(r"[a-zA-Z0-9]+(?:[-_]*[a-zA-Z0-9]+)*")
# Ids go into URL paths: only URL-unreserved characters, so nothing can escape the path.
_ACTIVATION_ID = re.compile(r"[A-Za-z0-9._~-]+")

_EVIDENCE_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "zip": "application/zip",
    "pdf": "application/pdf",
    "mp4": "video/mp4",
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def service_id(value: object, name: str = "service_id") -> str:
    if not isinstance(value, str):
        raise InvalidParameterError(name, "must be a string", value)
    if not 1 <= len(value) <= 30:
        raise InvalidParameterError(name, "must be 1-30 characters", value)
    if not _SERVICE_ID.fullmatch(value):
        raise InvalidParameterError(
            name,
            "may hold letters, digits, '.', '-', '_' and must start and end with a letter or digit",
            value,
        )
    return value


def country_id(value: object, name: str = "country_id") -> str:
    if not isinstance(value, str):
        raise InvalidParameterError(name, "must be a string", value)
    if not 2 <= len(value) <= 9:
        raise InvalidParameterError(name, "must be 2-9 characters", value)
    if not _COUNTRY_ID.fullmatch(value):
        raise InvalidParameterError(
            name, "may hold letters and digits joined by '-' or '_' (e.g. 'us', 'us_v')", value
        )
    return value


def activation_id(value: object, name: str = "activation_id") -> str:
    if not isinstance(value, str):
        raise InvalidParameterError(name, "must be a string (or an Activation)", value)
    if not value:
        raise InvalidParameterError(name, "must not be empty", value)
    if len(value) > 128 or not _ACTIVATION_ID.fullmatch(value) or value in (".", ".."):
        raise InvalidParameterError(
            name, "must be an id as returned by the API (letters, digits, '-', '_')", value
        )
    return value


def int_in_range(value: object, name: str, low: int, high: int | None = None) -> int:
    if not _is_int(value):
        raise InvalidParameterError(name, "must be an integer", value)
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        rule = f"must be between {low} and {high}" if high is not None else f"must be >= {low}"
        raise InvalidParameterError(name, rule, value)
    return value


def non_negative(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidParameterError(name, "must be a number", value)
    if not math.isfinite(value) or value < 0:
        raise InvalidParameterError(name, "must be a finite number >= 0", value)
    return float(value)


def positive_or_inf(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidParameterError(name, "must be a number", value)
    if math.isnan(value) or value <= 0:
        raise InvalidParameterError(name, "must be > 0 (math.inf: no bound)", value)
    return float(value)


def max_price(value: object, name: str = "max_price") -> int:
    return int_in_range(value, name, 1, 10_000)


def quality_factor(value: object) -> int | float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidParameterError("quality_factor", "must be a number", value)
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise InvalidParameterError("quality_factor", "must be between 0 and 100", value)
    return value


def order_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParameterError("order_id", "must be a non-empty string", value)
    return value


def message(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidParameterError("message", "must be a string", value)
    if len(value) > 1000:
        raise InvalidParameterError("message", "must be at most 1000 characters", value)
    return value


def _sniff(head: bytes) -> str | None:
    """The evidence type from the file's first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head[4:8] == b"ftyp":
        return "mp4"
    return None


def _extension(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    return filename.rsplit(".", 1)[1].lower()


def _check_size(size: int) -> None:
    if size > EVIDENCE_MAX_BYTES:
        raise InvalidParameterError("evidence", "must be at most 5 MB", f"<{size} bytes>")
    if size == 0:
        raise InvalidParameterError("evidence", "must not be empty", "<0 bytes>")


def evidence_file(content: bytes, filename: str | None) -> tuple[str, bytes, str]:
    """Check the evidence's size and type; return ``(filename, content, content_type)``."""
    _check_size(len(content))
    kind = _extension(filename)
    if kind is not None and kind not in _EVIDENCE_TYPES:
        raise InvalidParameterError(
            "evidence", "must be a jpg, png, webp, zip, pdf or mp4 file", filename
        )
    kind = kind or _sniff(content[:16])
    if kind is None:
        raise InvalidParameterError(
            "evidence",
            "must be a jpg, png, webp, zip, pdf or mp4 file (its type was not recognized)",
            f"<{len(content)} bytes>",
        )
    name = os.path.basename(filename) if filename else f"evidence.{kind}"
    return name, content, _EVIDENCE_TYPES[kind]


def read_evidence(evidence: Evidence) -> tuple[bytes, str | None]:
    """The evidence's bytes and file name, reading a path or a file object (blocking)."""
    if isinstance(evidence, (bytes, bytearray, memoryview)):
        return bytes(evidence), None
    if isinstance(evidence, (str, os.PathLike)):
        path = os.fspath(evidence)
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise InvalidParameterError(
                "evidence", f"cannot read the file ({exc.strerror})", path
            ) from exc
        _check_size(size)
        with open(path, "rb") as f:
            return f.read(EVIDENCE_MAX_BYTES + 1), path
    read = getattr(evidence, "read", None)
    if read is None:
        raise InvalidParameterError(
            "evidence", "must be bytes, a path or a binary file object", type(evidence).__name__
        )
    content = read(EVIDENCE_MAX_BYTES + 1)
    if not isinstance(content, bytes):
        raise InvalidParameterError(
            "evidence", "must be opened in binary mode", type(evidence).__name__
        )
    name = getattr(evidence, "name", None)
    return content, name if isinstance(name, str) else None


#: How offers are ranked (``prefer=``): see :meth:`AsyncPlatfone.rank_offers`.
Prefer = Literal["balanced", "price", "quality"]
_PREFER: tuple[Prefer, ...] = ("balanced", "price", "quality")


def prefer(value: object) -> Prefer:
    """``prefer`` as given, or :class:`InvalidParameterError` before anything is sent."""
    for choice in _PREFER:
        if value == choice:
            return choice
    raise InvalidParameterError("prefer", f"must be one of {', '.join(_PREFER)}", value)


def country_ids(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """The candidate countries, each checked; a single id reads as a list of one."""
    if value is None:
        return None
    ids = (value,) if isinstance(value, str) else tuple(value)
    if not ids:
        raise InvalidParameterError("country_ids", "must name at least one country", value)
    return tuple(dict.fromkeys(country_id(c, "country_ids") for c in ids))
