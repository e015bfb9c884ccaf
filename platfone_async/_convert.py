"""The cattrs converter: JSON <-> models (and a detailed twin for the errors).

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
import functools
import logging
import math
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import IterableValidationNote

from ._enums import OpenStrEnum
from ._errors import ResponseDecodeError
from ._models import Page

__all__ = ["converter", "decode", "decode_page", "detailed_converter"]

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


def _structure_list(type_: Any, made: cattrs.Converter) -> Callable[[object, object], list[Any]]:
    (item_type,) = typing.get_args(type_) or (Any,)
    item_hook = made.get_structure_hook(item_type)

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
    known = type_._value2member_map_.get(value)
    if known is not None:  # the usual case, for a tenth of what the enum's call costs
        return typing.cast(OpenStrEnum, known)
    member = type_(value)
    if not member.is_known and (type_.__name__, value) not in _unknown_seen:
        _unknown_seen.add((type_.__name__, value))
        logger.info("unknown %s value %r kept", type_.__name__, value)
    return member


# -- the fast path: each field's usual value checked in line --------------------------------


def _inline_check(type_: Any, names: dict[str, object]) -> str | None:
    """An expression of ``v`` that structures it as the hooks do, in line for the usual
    value (a str for a str, an int for an int, ...) and through the hook otherwise; None
    for a type this does not know (the class is then left to cattrs)."""
    if type_ in _SIMPLE:
        hook = names.setdefault(f"_h_{type_.__name__}", _SIMPLE[type_])
        exact = "int" if type_ is dt.datetime else type_.__name__
        if type_ is dt.datetime:
            return f"(_fromtimestamp(v, _UTC) if type(v) is int else {_name_of(hook, names)}(v, 0))"
        return f"(v if type(v) is {exact} else {_name_of(hook, names)}(v, 0))"
    if isinstance(type_, type) and issubclass(type_, OpenStrEnum):
        members = _name_of(type_._value2member_map_, names)
        enum = _name_of(type_, names)
        return f"({members}.get(v) if type(v) is str else None) or _h_enum(v, {enum})"
    args = typing.get_args(type_)
    if len(args) == 2 and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        check = _inline_check(inner, names)
        return None if check is None else f"(None if v is None else {check})"
    return None


_SIMPLE: dict[type, Callable[[object, Any], Any]] = {
    str: _structure_str,
    int: _structure_int,
    bool: _structure_bool,
    dt.datetime: _structure_datetime,
}


def _name_of(value: object, names: dict[str, object]) -> str:
    name = f"_n{len(names)}"
    names[name] = value
    return name


@functools.cache
def _fast_structure(cl: type) -> Callable[[Any, Any], Any] | None:
    """A structure function for the attrs class ``cl`` whose fields are all of the kinds
    :func:`_inline_check` knows, with no converters, validators, aliases or factories;
    else None. A value it does not take as it is goes through the same hook as in the
    detailed converter; anything that fails there is decoded again by that converter
    (see :func:`decode`), so both accept the same bodies (tests/models check it)."""
    names: dict[str, object] = {
        "_fromtimestamp": dt.datetime.fromtimestamp,
        "_UTC": _UTC,
        "_h_enum": _structure_open_enum,
        "_cl": cl,
    }
    lines = [
        "def structure(o, _):",
        "    if type(o) is not dict:",  # not JSON's object: cattrs says what it is
        "        raise TypeError('expected an object')",
    ]
    arguments = []
    for index, field in enumerate(attrs.fields(cl)):
        if (
            not field.init
            or field.converter is not None
            or field.validator is not None
            or field.alias != field.name
            or field.kw_only
            or isinstance(field.default, attrs.Factory)  # type: ignore[arg-type]
        ):
            return None
        check = _inline_check(field.type, names)
        if check is None:
            return None
        if field.default is attrs.NOTHING:
            lines.append(f"    v = o[{field.name!r}]")
            lines.append(f"    a{index} = {check}")
        else:
            default = _name_of(field.default, names)
            lines.append(f"    v = o.get({field.name!r}, _missing)")
            lines.append(f"    a{index} = {default} if v is _missing else {check}")
        arguments.append(f"a{index}")
    names["_missing"] = _MISSING
    lines.append(f"    return _cl({', '.join(arguments)})")
    code = compile("\n".join(lines), f"<platfone_async fast structure {cl.__name__}>", "exec")
    exec(code, names)  # our own source, made from the class's fields
    function: Callable[[Any, Any], Any] = names["structure"]  # type: ignore[assignment]
    return function


_MISSING = object()


def _has_fast_structure(type_: Any) -> bool:
    return attrs.has(type_) and _fast_structure(type_) is not None


def _fast_structure_hook(cl: type) -> Callable[[Any, Any], Any]:
    return typing.cast(Callable[[Any, Any], Any], _fast_structure(cl))


def _make_converter(*, detailed_validation: bool = True) -> cattrs.Converter:
    made = cattrs.Converter(forbid_extra_keys=False, detailed_validation=detailed_validation)
    made.register_structure_hook(int, _structure_int)
    made.register_structure_hook(float, _structure_float)
    made.register_structure_hook(str, _structure_str)
    made.register_structure_hook(bool, _structure_bool)
    made.register_structure_hook(dt.datetime, _structure_datetime)
    made.register_unstructure_hook(dt.datetime, _unstructure_datetime)
    made.register_structure_hook(OpenStrEnum, _structure_open_enum)  # and its subclasses
    made.register_structure_hook_factory(_is_list, _structure_list)
    if not detailed_validation:
        made.register_structure_hook_factory(_has_fast_structure, _fast_structure_hook)
    return made


#: Every answer is structured by it: the fields' usual values checked in line, cattrs'
#: error paths left out (twice as fast).
converter = _make_converter(detailed_validation=False)


@functools.cache
def detailed_converter() -> cattrs.Converter:
    """The same hooks with cattrs' detailed validation: a body ``converter`` refused is
    structured again by it, to say which field does not fit. Made on the first such body
    (a converter costs ~1 ms to make, and most programs never meet one)."""
    return _make_converter()


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
    except _DECODE_ERRORS:
        pass
    try:
        return typing.cast(T, detailed_converter().structure(data, cl))
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
