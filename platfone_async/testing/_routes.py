"""One handler per endpoint: validate the request, ask the ledger, shape the answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._asgi import Request, Response
from ._catalog import Catalog, etag_of
from ._ledger import Ledger
from ._records import Account, ActivationRecord
from ._reports import Reports
from ._wire import WireError, bad_request, not_found

__all__ = ["ROUTES", "Handlers", "match_route"]

#: Not in the reference: the emulator's answers about an activation advertise how often
#: it is worth polling (``platfone order --wait`` follows it; the real API sends no such
#: header, and the command then polls every 10 s as the API asks). Its SMS come seconds
#: after an order, not minutes.
POLL_HINT_HEADER = "x-poll-interval"
POLL_HINT_SECONDS = 1.0
POLL_HINT_HEADERS = {POLL_HINT_HEADER: f"{POLL_HINT_SECONDS:g}"}

_ID = r"(?P<activation_id>[^/]+)"
# (method, path under /api/v1, route name); the names are the SDK's method names.
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(path), name)
    for method, path, name in [
        ("GET", r"/user/balance", "get_balance"),
        ("POST", r"/activation", "create_activation"),
        ("GET", r"/activation/history", "get_activation_history"),
        ("GET", r"/activations", "get_activation_history"),
        ("GET", r"/activation/countries", "get_countries"),
        ("GET", r"/activation/services", "get_services"),
        ("GET", r"/activation/services/popular", "get_popular_services"),
        ("GET", r"/activation/prices/countries", "get_prices_by_country"),
        ("GET", r"/activation/prices/services", "get_prices_by_service"),
        (
            "GET",
            r"/activation/prices/services/(?P<service_id>[^/]+)/countries/(?P<country_id>[^/]+)",
            "get_price",
        ),
        ("GET", r"/activation/reports", "get_reports"),
        ("GET", rf"/activation/{_ID}", "get_activation"),
        ("PUT", rf"/activation/{_ID}/retry", "retry_activation"),
        ("PUT", rf"/activation/{_ID}/cancel", "cancel_activation"),
        ("PUT", rf"/activation/{_ID}/finalize", "finalize_activation"),
        ("GET", rf"/activation/{_ID}/report/reasons", "get_report_reasons"),
        ("POST", rf"/activation/{_ID}/report", "create_report"),
        ("GET", rf"/activation/{_ID}/report", "get_report"),
    ]
]

_SERVICE_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,28}[A-Za-z0-9])?$")
_COUNTRY_ID = re.compile(r"^[a-zA-Z0-9]+(?:[-_]*[a-zA-Z0-9]+)*$")
_SUCCESS = {"result": "success"}


def match_route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The route name and path parameters; a WireError for no route or a wrong method."""
    allowed = []
    for route_method, pattern, name in ROUTES:
        found = pattern.fullmatch(path)
        if found is None:
            continue
        if route_method == method:
            return name, found.groupdict()
        allowed.append(route_method)
    if allowed:
        raise WireError(405, "MethodNotAllowedException", f"{method} is not allowed on {path}")
    raise not_found(f"no endpoint {method} {path}")


class Handlers:
    """Endpoint handlers, looked up by route name; each runs under the emulator's lock."""

    def __init__(self, catalog: Catalog, ledger: Ledger, reports: Reports) -> None:
        self.catalog = catalog
        self.ledger = ledger
        self.reports = reports

    def handler(self, route: str) -> Callable[[Account, Request, float], Response]:
        method: Callable[[Account, Request, float], Response] = getattr(self, route)
        return method

    # -- catalog and prices -----------------------------------------------------------

    def get_countries(self, account: Account, request: Request, now: float) -> Response:
        return _cached(request, self.catalog.countries_json())

    def get_services(self, account: Account, request: Request, now: float) -> Response:
        return _cached(request, self.catalog.services_json())

    def get_popular_services(self, account: Account, request: Request, now: float) -> Response:
        return _cached(request, self.catalog.popular_json())

    def get_price(self, account: Account, request: Request, now: float) -> Response:
        service_id = _service_id(request.params["service_id"])
        country_id = _country_id(request.params["country_id"])
        info = self.catalog.price_info(service_id, country_id)
        if info is None:
            raise not_found(f"no prices for {service_id} in {country_id}")
        return Response.json(info)

    def get_prices_by_country(self, account: Account, request: Request, now: float) -> Response:
        country_id = request.query.get("country_id")
        if country_id is not None:
            _country_id(country_id)
        return Response.json(self.catalog.prices_by_country(country_id))

    def get_prices_by_service(self, account: Account, request: Request, now: float) -> Response:
        service_id = request.query.get("service_id")
        if service_id is not None:
            _service_id(service_id)
        return Response.json(self.catalog.prices_by_service(service_id))

    def get_balance(self, account: Account, request: Request, now: float) -> Response:
        return Response.json(account.balance_json())

    # -- activations ------------------------------------------------------------------

    def create_activation(self, account: Account, request: Request, now: float) -> Response:
        body = request.json_object()
        service_id = _service_id(_field(body, "service_id", str, required=True))
        country_id = _country_id(_field(body, "country_id", str, required=True))
        max_price = _field(body, "max_price", int)
        if max_price is not None and not 1 <= max_price <= 10_000:
            raise bad_request("max_price must be within 1..10000")
        quality = _field(body, "quality_factor", (int, float))
        if quality is not None and not 0 <= quality <= 100:
            raise bad_request("quality_factor must be within 0..100")
        activation = self.ledger.create(
            account,
            service_id,
            country_id,
            max_price=max_price,
            order_id=_field(body, "order_id", str),
            quality_factor=None if quality is None else float(quality),
            now=now,
        )
        return Response.json(activation.to_json(), headers=POLL_HINT_HEADERS)

    def get_activation(self, account: Account, request: Request, now: float) -> Response:
        return Response.json(
            self._activation(account, request).to_json(), headers=POLL_HINT_HEADERS
        )

    def retry_activation(self, account: Account, request: Request, now: float) -> Response:
        self.ledger.retry(self._activation(account, request), now)
        return Response.json(_SUCCESS)

    def cancel_activation(self, account: Account, request: Request, now: float) -> Response:
        self.ledger.cancel(self._activation(account, request), now)
        return Response.json(_SUCCESS)

    def finalize_activation(self, account: Account, request: Request, now: float) -> Response:
        self.ledger.finalize(self._activation(account, request), now)
        return Response.json(_SUCCESS)

    def get_activation_history(self, account: Account, request: Request, now: float) -> Response:
        page, limit = _paging(request, max_limit=50)
        raw = request.query.get("exclude_active", "false").lower()
        if raw not in ("true", "false", "1", "0"):
            raise bad_request("exclude_active must be true or false")
        exclude_active = raw in ("true", "1")
        return Response.json(self.ledger.history(account, page, limit, exclude_active))

    # -- reports ----------------------------------------------------------------------

    def get_report_reasons(self, account: Account, request: Request, now: float) -> Response:
        return Response.json(self.reports.reasons_json(self._activation(account, request), now))

    def create_report(self, account: Account, request: Request, now: float) -> Response:
        activation = self._activation(account, request)
        form = request.form()
        if "reason_id" not in form:
            raise bad_request("reason_id is required")
        raw_reason = form["reason_id"][0].decode("utf-8", "replace").strip()
        if not raw_reason.isdigit() or int(raw_reason) < 1:
            raise bad_request("reason_id must be an integer >= 1")
        message = form["message"][0].decode("utf-8", "replace") if "message" in form else None
        evidence, filename = form.get("evidence", (None, None))
        result = self.reports.create(
            activation, int(raw_reason), message, evidence or None, filename, now
        )
        return Response.json(result)

    def get_report(self, account: Account, request: Request, now: float) -> Response:
        report = self.reports.get(self._activation(account, request))
        return Response.json(self.reports.to_json(report))

    def get_reports(self, account: Account, request: Request, now: float) -> Response:
        page, limit = _paging(request, max_limit=100)
        return Response.json(self.reports.page(account, page, limit))

    def _activation(self, account: Account, request: Request) -> ActivationRecord:
        return self.ledger.owned(account, request.params["activation_id"])


def _cached(request: Request, document: Any) -> Response:
    """Answer a catalog document with its ``X-ETag``, or 304 when the client has it."""
    etag = etag_of(document)
    wanted = request.headers.get("if-none-match", "")
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in wanted.split(",")}
    if etag in tags or "*" in tags:
        return Response(304, b"", {"x-etag": etag})
    return Response.json(document, headers={"x-etag": etag})


def _field(body: dict[str, Any], name: str, kind: Any, *, required: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise bad_request(f"{name} has the wrong type")
    return value


def _service_id(value: str) -> str:
    if not _SERVICE_ID.match(value):
        raise bad_request(f"service_id {value!r} is not a valid service id")
    return value


def _country_id(value: str) -> str:
    if not 2 <= len(value) <= 9 or not _COUNTRY_ID.match(value):
        raise bad_request(f"country_id {value!r} is not a valid country id")
    return value


def _paging(request: Request, max_limit: int) -> tuple[int, int]:
    values = []
    for name, default, high in (("page", 1, None), ("limit", 10, max_limit)):
        raw = request.query.get(name, str(default))
        if not raw.isdigit() or int(raw) < 1 or (high is not None and int(raw) > high):
            bound = f"1..{high}" if high else ">= 1"
            raise bad_request(f"{name} must be an integer {bound}")
        values.append(int(raw))
    return values[0], values[1]
