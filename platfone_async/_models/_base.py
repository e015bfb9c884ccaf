"""What every model shares: itself as the API's JSON."""

import datetime as dt
import enum
import json
import math
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["ApiModel", "api_json", "publish"]


def api_json(value: object) -> Any:
    """``value`` as the API's JSON: its field names, timestamps as Unix seconds, statuses
    as their strings, prices in cents (as they are); ``NaN`` and infinities as null."""
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))  # type: ignore[arg-type]
        return {f.name: api_json(getattr(value, f.name)) for f in fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): api_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [api_json(v) for v in value]
    return value


class ApiModel:
    """What every public model offers: itself as the API's JSON."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """This object as the API sends it: the same field names, timestamps as Unix
        seconds, statuses as their strings, prices in cents. The SDK decodes it back to
        an equal object."""
        result: dict[str, Any] = api_json(self)
        return result

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string (``indent``: as ``json.dumps``)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def publish(*classes: type) -> None:
    """Show ``classes`` by their public path (``platfone_async.Country``) in reprs,
    tracebacks and pickles. ``platfone_async`` does that for every name it exports; the
    modules a client method may load before the package's name is used call it too."""
    for cls in classes:
        cls.__module__ = "platfone_async"
