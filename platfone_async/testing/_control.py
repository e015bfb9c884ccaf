"""The control API: the emulator's controls as HTTP operations under ``/_emulator/``.

One implementation, two doors. Each :class:`Operation` names a public method of
:class:`PlatfoneEmulator` and the JSON parameters it takes; the HTTP door only turns a
request into those arguments and the method's return value into JSON. So
``emulator.deliver_sms(aid, "123456")`` in-process and

    curl -X POST http://127.0.0.1:8080/_emulator/deliver_sms \\
         -d '{"activation_id": "...", "code": "123456"}'

run the same code. ``GET /_emulator/`` lists every operation with its parameters.
Reads are GET (parameters in the query string or a JSON body), changes are POST (a JSON
object body, with or without ``Content-Type: application/json``). The answer is
``{"result": ...}``; a failure is ``{"error": "..."}`` with 400 (bad parameters), 404
(no such operation, activation or account), 405 (wrong HTTP method) or 409 (the
emulator's state does not allow it, e.g. an SMS to an expired activation).
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import mimetypes
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._asgi import Request, Response
from ._faults import Fault
from ._sms import SmsPolicy

if TYPE_CHECKING:
    from ._emulator import PlatfoneEmulator

__all__ = ["CONTROL_PREFIX", "OPERATIONS", "ControlError", "Operation", "Param", "answer"]

#: Where the control API lives, beside the Platfone paths (``/api/v1``, ``/test/api/v1``).
CONTROL_PREFIX = "/_emulator"


class ControlError(Exception):
    """A control request that cannot be carried out: its HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer")
    return value


def _number(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise TypeError("a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a number")
    if not math.isfinite(value):
        raise TypeError("a finite number")
    return float(value)


def _flag(value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if not isinstance(value, bool):
        raise TypeError("true or false")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("a JSON object")
    return value


def _fault(value: Any) -> Fault:
    """``{"status": 503}``, ``{"drop": true, "after_processing": true}``... (Fault's fields)."""
    fields = dict(_object(value))
    known = {field.name for field in attrs.fields(Fault)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"a fault, whose fields are {sorted(known)} (not {unknown})")
    try:
        return Fault(**fields)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a valid fault ({exc})") from None


def _sms_policy(value: Any) -> SmsPolicy | None:
    """``null`` (SMS only on demand) or ``{"delay": 5}`` / ``{"delay": [2, 8], ...}``."""
    if value is None:
        return None
    fields = dict(_object(value))
    if isinstance(fields.get("delay"), list):
        fields["delay"] = tuple(fields["delay"])
    try:
        return SmsPolicy(**fields)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a valid SMS policy ({exc})") from None


def _limit(value: Any) -> tuple[int, float] | None:
    """``null`` (unlimited) or ``[calls, period]``."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise TypeError("[calls, period] or null")
    return _integer(value[0]), _number(value[1])


@attrs.frozen
class Param:
    """One parameter of an operation: its JSON name, how to read it, and if required."""

    name: str
    kind: Callable[[Any], Any] = attrs.field(repr=False)
    required: bool = False
    nullable: bool = False


@attrs.frozen
class Operation:
    """``POST`` (or ``GET``) ``/_emulator/{name}``: calls ``PlatfoneEmulator.{method}``."""

    name: str
    http_method: str
    params: tuple[Param, ...]
    method: str = ""
    #: The method's parameters that only the in-process door has (an ASGI app cannot
    #: travel over HTTP).
    in_process_only: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """The emulator method it calls (the operation's own name unless told)."""
        return self.method or self.name

    def arguments(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The method's keyword arguments from the request's JSON; ControlError if bad."""
        known = {param.name: param for param in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ControlError(400, f"{self.name} takes {sorted(known)}, not {unknown}")
        arguments: dict[str, Any] = {}
        for param in self.params:
            if param.name not in given:
                if param.required:
                    raise ControlError(400, f"{self.name} needs {param.name}")
                continue
            value = given[param.name]
            if value is None and param.nullable:
                arguments[param.name] = None
                continue
            try:
                arguments[param.name] = param.kind(value)
            except TypeError as exc:
                raise ControlError(400, f"{param.name} must be {exc}") from None
        return arguments

    def __call__(self, emulator: PlatfoneEmulator, given: Mapping[str, Any]) -> Any:
        """Carry the operation out on ``emulator``: exactly the in-process method call."""
        method: Callable[..., Any] = getattr(emulator, self.target)
        try:
            return method(**self.arguments(given))
        except KeyError as exc:
            raise ControlError(404, str(exc.args[0]) if exc.args else "not found") from None
        except (ValueError, TypeError) as exc:
            raise ControlError(409, str(exc)) from None

    def describe(self, emulator: PlatfoneEmulator) -> dict[str, Any]:
        doc = inspect.getdoc(getattr(emulator, self.target)) or ""
        return {
            "name": self.name,
            "http_method": self.http_method,
            "path": f"{CONTROL_PREFIX}/{self.name}",
            "params": [
                {"name": p.name, "required": p.required, "type": p.kind.__name__.lstrip("_")}
                for p in self.params
            ],
            "doc": doc.split("\n\n")[0].replace("\n", " "),
        }


def _p(
    name: str, kind: Callable[[Any], Any], *, required: bool = False, nullable: bool = False
) -> Param:
    return Param(name, kind, required, nullable=nullable or kind in (_sms_policy, _limit))


_ACTIVATION = _p("activation_id", _text, required=True)
_KEY = _p("api_key", _text)

#: Every operation of the control API, by name.
OPERATIONS: Mapping[str, Operation] = {
    op.name: op
    for op in (
        # SMS and activations
        Operation(
            "deliver_sms",
            "POST",
            (_ACTIVATION, _p("code", _text, required=True), _p("text", _text)),
        ),
        Operation("expire", "POST", (_ACTIVATION,)),
        Operation("cancel", "POST", (_ACTIVATION,)),
        Operation("finalize", "POST", (_ACTIVATION,)),
        Operation(
            "set_sms_policy",
            "POST",
            (_p("policy", _sms_policy, required=True), _p("service_id", _text)),
        ),
        Operation("approve_report", "POST", (_ACTIVATION,)),
        # the market
        Operation(
            "set_offer",
            "POST",
            (
                _p("service_id", _text, required=True),
                _p("country_id", _text, required=True),
                _p("price", _integer, required=True),
                _p("quality", _number),
                _p("count", _integer),
                _p("retriable", _flag),
                _p("cancel_after", _integer, nullable=True),
            ),
        ),
        Operation("decline_report", "POST", (_ACTIVATION, _p("decline_id", _integer))),
        # time
        Operation("advance", "POST", (_p("seconds", _number, required=True),)),
        Operation("tick", "POST", ()),
        # accounts and money
        Operation(
            "add_account",
            "POST",
            (_KEY, _p("balance", _integer), _p("email_verified", _flag)),
        ),
        Operation("set_balance", "POST", (_p("total", _integer, required=True), _KEY)),
        Operation("set_on_hold", "POST", (_p("on_hold", _flag), _KEY)),
        Operation("block", "POST", (_p("seconds", _number), _KEY)),
        Operation("unblock", "POST", (_KEY,)),
        # faults and limits
        Operation(
            "inject_fault",
            "POST",
            (
                _p("route", _text, required=True),
                _p("fault", _fault, required=True),
                _p("times", _integer),
            ),
        ),
        Operation("clear_faults", "POST", ()),
        Operation(
            "set_rate_limit",
            "POST",
            (_p("route", _text, required=True), _p("limit", _limit, required=True)),
        ),
        Operation("reset_rate_windows", "POST", ()),
        # webhooks
        Operation(
            "configure_webhooks",
            "POST",
            (
                _p("url", _text, required=True),
                _p("secret", _text, required=True),
                _KEY,
                _p("max_attempts", _integer),
                _p("backoff", _number),
                _p("timeout", _number),
            ),
            in_process_only=("app",),
        ),
        Operation("webhook_attempts", "GET", ()),
        # what happened
        Operation("ledger", "GET", (_KEY,)),
        Operation("requests", "GET", (_p("route", _text),), method="request_log"),
        Operation("balance", "GET", (_KEY,)),
        Operation("activations", "GET", (_KEY,)),
        Operation("activation", "GET", (_ACTIVATION,)),
        Operation("report", "GET", (_ACTIVATION,)),
        # everything
        Operation("reset", "POST", ()),
    )
}


def answer(emulator: PlatfoneEmulator, request: Request) -> Response:
    """The HTTP door: one control request in, its JSON answer out."""
    name = request.path[len(CONTROL_PREFIX) :].strip("/")
    try:
        if name.startswith("evidence/") and request.method == "GET":
            return _evidence(emulator, name.removeprefix("evidence/"))
        if not name:
            if request.method != "GET":
                raise ControlError(405, "GET /_emulator/ lists the operations")
            listing = [op.describe(emulator) for op in OPERATIONS.values()]
            return Response.json({"operations": listing, "base_url": emulator.base_url})
        operation = OPERATIONS.get(name)
        if operation is None:
            raise ControlError(404, f"no control operation {name!r}; GET /_emulator/ lists them")
        if request.method != operation.http_method:
            raise ControlError(405, f"{name} is {operation.http_method}, not {request.method}")
        result = operation(emulator, _given(request))
        return Response.json({"result": _jsonable(result)})
    except ControlError as error:
        return Response.json({"error": error.message}, error.status)


def _evidence(emulator: PlatfoneEmulator, activation_id: str) -> Response:
    """A report's uploaded evidence as it was sent (what a report's ``evidence_url`` names)."""
    report = emulator.report(activation_id)
    if report is None or report["evidence"] is None:
        raise ControlError(404, f"no evidence was uploaded for {activation_id!r}")
    kind = mimetypes.guess_type(report["evidence_filename"] or "")[0]
    return Response(200, report["evidence"], {"content-type": kind or "application/octet-stream"})


def _jsonable(value: Any) -> Any:
    """A result as JSON can carry it: bytes (a report's evidence) become base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _given(request: Request) -> dict[str, Any]:
    """The parameters: the query string, then a JSON object body (whatever its type)."""
    given: dict[str, Any] = dict(request.query)
    if request.body.strip():
        try:
            document = json.loads(request.body)
        except ValueError:
            raise ControlError(400, "the body is not valid JSON") from None
        if not isinstance(document, dict):
            raise ControlError(400, "the body must be a JSON object")
        given.update(document)
    return given
