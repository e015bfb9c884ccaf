"""The one cattrs converter: JSON <-> models.

- Unix timestamps <-> aware UTC datetimes.
- A status value the enum does not know is kept as a pseudo-member of it (logged once).
- Unknown fields are ignored; ``null`` is accepted where the model allows ``None``.
- Types are checked rather than coerced: a dict where a string belongs is an error,
  not ``"{...}"``. Numbers sent as strings (and string ids sent as numbers) are accepted.

Anything that does not fit raises :class:`ResponseDecodeError` with the raw body, the
JSON path of the first bad field, and any SMS code the body carried (never lost).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import cattrs
from cattrs.errors import IterableValidationNote

from ._enums import OpenStrEnum
from ._errors import ResponseDecodeError
from ._models import Page

__all__ = ["converter", "decode", "decode_page"]

T = TypeVar("T")

logger = logging.getLogger("platfone_async")

_UTC = dt.timezone.utc
_unknown_seen: set[tuple[str, str]] = set()


def _fail(expected: str, value: object) -> typing.NoReturn:
    raise TypeError(f"expected {expected}, got {type(value).__name__}")


def _structure_int(value: object, _: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    _fail("an integer", value)


def _structure_float(value: object, _: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            _fail("a number", value)
    else:
        _fail("a number", value)
    if not math.isfinite(result):
        _fail("a finite number", value)
    return result


def _structure_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    _fail("a string", value)


def _structure_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    _fail("a boolean", value)


def _structure_datetime(value: object, _: object) -> dt.datetime:
    # An int is what the API sends: it skips the checks a float or a string needs.
    seconds = value if type(value) is int else _structure_float(value, float)
    try:
        return dt.datetime.fromtimestamp(seconds, tz=_UTC)
    except (OverflowError, OSError, ValueError):
        _fail("a Unix timestamp", value)


def _unstructure_datetime(value: dt.datetime) -> int:
    return int(value.timestamp())


def _structure_list(type_: Any) -> Callable[[object, object], list[Any]]:
    (item_type,) = typing.get_args(type_) or (Any,)
    item_hook = converter.get_structure_hook(item_type)

    def structure(value: object, _: object) -> list[Any]:
        if not isinstance(value, list):
            _fail("a list", value)
        items = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except Exception as exc:  # collected, as cattrs does, to keep the path
                note = IterableValidationNote(
                    f"Structuring {type_} @ index {index}", index, item_type
                )
                setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010
                errors.append(exc)
                break
        if errors:
            raise cattrs.IterableValidationError(f"While structuring {type_!r}", errors, type_)
        return items

    return structure


def _is_list(type_: Any) -> bool:
    return typing.get_origin(type_) is list


def _structure_open_enum(value: object, type_: type[OpenStrEnum]) -> OpenStrEnum:
    if not isinstance(value, str):
        _fail("a string", value)
    member = type_(value)
    if not member.is_known and (type_.__name__, value) not in _unknown_seen:
        _unknown_seen.add((type_.__name__, value))
        logger.info("unknown %s value %r kept", type_.__name__, value)
    return member


def _make_converter() -> cattrs.Converter:
    made = cattrs.Converter(forbid_extra_keys=False)
    made.register_structure_hook(int, _structure_int)
    made.register_structure_hook(float, _structure_float)
    made.register_structure_hook(str, _structure_str)
    made.register_structure_hook(bool, _structure_bool)
    made.register_structure_hook(dt.datetime, _structure_datetime)
    made.register_unstructure_hook(dt.datetime, _unstructure_datetime)
    made.register_structure_hook(OpenStrEnum, _structure_open_enum)  # and its subclasses
    made.register_structure_hook_factory(_is_list, _structure_list)
    return made


converter = _make_converter()


# What structuring raises for a body that does not fit. Anything else (a NameError, say)
# is a bug in the SDK and must not be disguised as a bad response.
_DECODE_ERRORS = (
    cattrs.BaseValidationError,
    TypeError,
    ValueError,
    KeyError,
    AttributeError,
    IndexError,
    OverflowError,
    RecursionError,
)


def _error_path(exc: Exception) -> str | None:
    try:
        messages = cattrs.transform_error(exc)
    except Exception:  # the error tree itself was odd; the path is a nicety
        return None
    for message in messages:
        if " @ " in message:
            return message.rsplit(" @ ", 1)[1]
    return "$" if messages else None


def _describe(exc: Exception) -> str:
    try:
        messages = cattrs.transform_error(exc)
    except Exception:
        messages = []
    return messages[0] if messages else str(exc)


def decode(
    data: object,
    cl: type[T] | Any,
    *,
    status_code: int,
    text: str | Callable[[], str],
    root: str = "$",
) -> T:
    """Structure parsed JSON into ``cl``, or raise :class:`ResponseDecodeError`.

    ``text`` is the raw body for the error, or a callable giving it: decoding a body
    to text costs more than structuring it, so it is done only when needed.
    """
    try:
        return typing.cast(T, converter.structure(data, cl))
    except _DECODE_ERRORS as exc:
        path = _error_path(exc)
        raise ResponseDecodeError(
            f"response does not fit {_type_name(cl)}: {_describe(exc)}",
            status_code=status_code,
            body=text if isinstance(text, str) else text(),
            path=None if path is None else root + path[1:],
            data=data,
        ) from exc


def decode_page(
    data: object,
    item_cls: type[T],
    items_key: str,
    *,
    status_code: int,
    text: str | Callable[[], str],
) -> Page[T]:
    """Structure a paginated body (``{items_key: [...], page, limit, pages, total}``)."""
    if not isinstance(data, dict):
        raise ResponseDecodeError(
            f"response does not fit Page[{item_cls.__name__}]: expected an object",
            status_code=status_code,
            body=text if isinstance(text, str) else text(),
            path="$",
        )
    fields = {}
    for name in ("page", "limit", "pages", "total"):
        try:
            fields[name] = _structure_int(data.get(name), int)
        except TypeError as exc:
            raise ResponseDecodeError(
                f"response does not fit Page[{item_cls.__name__}]: {exc}",
                status_code=status_code,
                body=text if isinstance(text, str) else text(),
                path=f"$.{name}",
            ) from exc
    items: list[T] = decode(
        data.get(items_key),
        list[item_cls],  # type: ignore[valid-type]
        status_code=status_code,
        text=text,
        root=f"$.{items_key}",
    )
    return Page(items=items, **fields)


def _type_name(cl: object) -> str:
    if typing.get_origin(cl) is not None:
        return repr(cl).replace("platfone_async.", "")
    return getattr(cl, "__name__", None) or repr(cl)
