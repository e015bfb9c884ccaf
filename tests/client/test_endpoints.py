"""Every endpoint: the exact request it sends and the model it builds from the reference's body."""

from __future__ import annotations

import datetime as dt
import gc
import json
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

from platfone_async import (
    Activation,
    ActivationStatus,
    AsyncPlatfone,
    Balance,
    BillingStatus,
    Country,
    CountryPrices,
    Page,
    PriceInfo,
    Report,
    ReportReason,
    ReportResult,
    ReportResultStatus,
    Service,
    ServicePrices,
    SmsStatus,
)
from tests._support import (
    ACTIVATION,
    AID,
    API_KEY,
    BASE_URL,
    HISTORY_ACTIVATION,
    PRICE,
    REPORT,
    Server,
    json_response,
)

pytestmark = pytest.mark.anyio

SUCCESS = {"result": "success"}

Call = Callable[[AsyncPlatfone], Awaitable[Any]]

# (call, HTTP method, path after the base URL, query, JSON body, reply body, check result)
CASES: list[tuple[str, Call, str, str, dict[str, str], Any, Any, Callable[[Any], bool]]] = [
    (
        "create_activation",
        lambda c: c.create_activation(
            "7eleven", "us", max_price=90, order_id="682b17b958bf608ceae5ec3c", quality_factor=10
        ),
        "POST",
        "/activation",
        {},
        {
            "service_id": "7eleven",
            "country_id": "us",
            "max_price": 90,
            "order_id": "682b17b958bf608ceae5ec3c",
            "quality_factor": 10,
        },
        ACTIVATION,
        lambda r: isinstance(r, Activation) and r.activation_id == AID,
    ),
    (
        "create_activation minimal",
        lambda c: c.create_activation("netflix", "us"),
        "POST",
        "/activation",
        {},
        {"service_id": "netflix", "country_id": "us"},
        ACTIVATION,
        lambda r: isinstance(r, Activation),
    ),
    (
        "get_activation",
        lambda c: c.get_activation(AID),
        "GET",
        f"/activation/{AID}",
        {},
        None,
        ACTIVATION,
        lambda r: isinstance(r, Activation) and r.phone == "14155552671",
    ),
    (
        "retry_activation",
        lambda c: c.retry_activation(AID),
        "PUT",
        f"/activation/{AID}/retry",
        {},
        None,
        SUCCESS,
        lambda r: r is None,
    ),
    (
        "cancel_activation",
        lambda c: c.cancel_activation(AID),
        "PUT",
        f"/activation/{AID}/cancel",
        {},
        None,
        SUCCESS,
        lambda r: r is None,
    ),
    (
        "finalize_activation",
        lambda c: c.finalize_activation(AID),
        "PUT",
        f"/activation/{AID}/finalize",
        {},
        None,
        SUCCESS,
        lambda r: r is None,
    ),
    (
        "get_activation_history",
        lambda c: c.get_activation_history(page=2, limit=50),
        "GET",
        "/activation/history",
        {"page": "2", "limit": "50"},
        None,
        {"activations": [HISTORY_ACTIVATION], "page": 2, "limit": 50, "pages": 5, "total": 48},
        lambda r: (
            isinstance(r, Page)
            and (r.page, r.limit, r.pages, r.total) == (2, 50, 5, 48)
            and r.items[0].sms_code == "6363"
        ),
    ),
    (
        "get_price",
        lambda c: c.get_price("7eleven", "uk"),
        "GET",
        "/activation/prices/services/7eleven/countries/uk",
        {},
        None,
        PRICE,
        lambda r: (
            isinstance(r, PriceInfo)
            and (r.price.min, r.price.max, r.price.suggested, r.quality.avg, r.count)
            == (210, 510, 310, 0.3, 143)
        ),
    ),
    (
        "get_prices_by_country",
        lambda c: c.get_prices_by_country("uk"),
        "GET",
        "/activation/prices/countries",
        {"country_id": "uk"},
        None,
        [{"country_id": "uk", "services": [{"service_id": "7eleven", **PRICE}]}],
        lambda r: isinstance(r[0], CountryPrices) and r[0].services[0].price.suggested == 310,
    ),
    (
        "get_prices_by_country all",
        lambda c: c.get_prices_by_country(),
        "GET",
        "/activation/prices/countries",
        {},
        None,
        [],
        lambda r: r == [],
    ),
    (
        "get_prices_by_service",
        lambda c: c.get_prices_by_service("7eleven"),
        "GET",
        "/activation/prices/services",
        {"service_id": "7eleven"},
        None,
        [{"service_id": "7eleven", "countries": [{"country_id": "uk", **PRICE}]}],
        lambda r: isinstance(r[0], ServicePrices) and r[0].countries[0].count == 143,
    ),
    (
        "get_countries",
        lambda c: c.get_countries(),
        "GET",
        "/activation/countries",
        {},
        None,
        [{"country_id": "uk", "name": "United Kingdom", "alt_name": "x|y", "codes": ["1658"]}],
        lambda r: r == [Country("uk", "United Kingdom", "x|y", ["1658"])],
    ),
    (
        "get_services",
        lambda c: c.get_services(),
        "GET",
        "/activation/services",
        {},
        None,
        [
            {
                "service_id": "7eleven",
                "name": "7-Eleven",
                "alt_name": "7-Eleven",
                "has_description": True,
                "has_warning": False,
            }
        ],
        lambda r: r == [Service("7eleven", "7-Eleven", "7-Eleven", True, False, None)],
    ),
    (
        "get_popular_services",
        lambda c: c.get_popular_services(),
        "GET",
        "/activation/services/popular",
        {},
        None,
        [{"service_id": "other", "name": "Other", "prohibited": False}],
        lambda r: r == [Service("other", "Other", prohibited=False)],
    ),
    (
        "get_balance",
        lambda c: c.get_balance(),
        "GET",
        "/user/balance",
        {},
        None,
        {"total": 2301, "reserved": 210},
        lambda r: r == Balance(2301, 210) and r.available == 2091,
    ),
    (
        "get_report_reasons",
        lambda c: c.get_report_reasons(AID),
        "GET",
        f"/activation/{AID}/report/reasons",
        {},
        None,
        [
            {"reason_id": 1, "reason_name": "SMS is not coming", "evidence_required": True},
            {"reason_id": 2, "reason_name": "Wrong SMS received", "evidence_required": False},
        ],
        lambda r: r[0] == ReportReason(1, "SMS is not coming", True) and len(r) == 2,
    ),
    (
        "get_report",
        lambda c: c.get_report(AID),
        "GET",
        f"/activation/{AID}/report",
        {},
        None,
        REPORT,
        lambda r: isinstance(r, Report) and r.activation.sms_code == "6363",
    ),
    (
        "get_reports",
        lambda c: c.get_reports(page=3, limit=100),
        "GET",
        "/activation/reports",
        {"page": "3", "limit": "100"},
        None,
        {"reports": [REPORT], "page": 3, "limit": 100, "pages": 5, "total": 48},
        lambda r: isinstance(r, Page) and r.items[0].reason_id == 1 and r.total == 48,
    ),
]


@pytest.mark.parametrize(
    ("call", "method", "path", "query", "body", "reply", "check"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_endpoint_request_and_model(
    call: Call,
    method: str,
    path: str,
    query: dict[str, str],
    body: Any,
    reply: Any,
    check: Callable[[Any], bool],
) -> None:
    """Each method sends the documented request and decodes the reference's example body."""
    server = Server(json_response(200, reply))
    async with server.client() as client:
        result = await call(client)
    (request,) = server.requests
    assert method == request.method
    assert BASE_URL + path == str(request.url.copy_with(query=None))
    assert query == dict(request.url.params)
    assert API_KEY == request.headers["x-api-key"]
    assert request.headers["user-agent"].startswith("platfone-async/")
    if body is None:
        assert b"" == request.content
    else:
        assert "application/json" == request.headers["content-type"]
        assert body == json.loads(request.content)
    assert check(result)


async def test_activation_model_fields() -> None:
    """The activation's JSON maps onto typed fields: enums, aware UTC datetimes, None."""
    server = Server(json_response(200, ACTIVATION))
    async with server.client() as client:
        activation = await client.get_activation(AID)
    assert SmsStatus.SMS_REQUESTED == activation.sms_status
    assert ActivationStatus.ACTIVE == activation.activation_status
    assert BillingStatus.RESERVED == activation.billing_status
    assert dt.datetime(2024, 10, 16, 14, 22, 19, tzinfo=dt.timezone.utc) == activation.expire_at
    assert activation.cancelable_after is None
    assert activation.report_status is None
    assert not activation.sms_received
    assert activation.is_active


async def test_activation_object_accepted_as_id() -> None:
    """Methods taking an activation id also take the Activation itself."""
    server = Server(json_response(200, ACTIVATION), json_response(200, SUCCESS))
    async with server.client() as client:
        activation = await client.get_activation(AID)
        await client.cancel_activation(activation)
    assert f"/api/v1/activation/{AID}/cancel" == server.requests[1].url.path


async def test_iter_activation_history_walks_all_pages() -> None:
    """The iterator asks page after page until the last and yields each activation once."""
    first = dict(HISTORY_ACTIVATION, activation_id="a1")
    second = dict(HISTORY_ACTIVATION, activation_id="a2")
    third = dict(HISTORY_ACTIVATION, activation_id="a3")
    server = Server(
        json_response(
            200, {"activations": [first, second], "page": 1, "limit": 2, "pages": 2, "total": 3}
        ),
        # a new activation shifted "a2" onto page 2: it must not be yielded twice
        json_response(
            200, {"activations": [second, third], "page": 2, "limit": 2, "pages": 2, "total": 4}
        ),
    )
    async with server.client() as client:
        ids = [a.activation_id async for a in client.iter_activation_history(limit=2)]
    assert ["a1", "a2", "a3"] == ids
    assert [{"page": "1", "limit": "2"}, {"page": "2", "limit": "2"}] == [
        dict(r.url.params) for r in server.requests
    ]


async def test_iter_reports_stops_on_empty_page() -> None:
    """The reports iterator stops at an empty page even if ``pages`` says more."""
    server = Server(
        json_response(200, {"reports": [REPORT], "page": 1, "limit": 100, "pages": 9, "total": 9}),
        json_response(200, {"reports": [], "page": 2, "limit": 100, "pages": 9, "total": 9}),
    )
    async with server.client() as client:
        reports = [r async for r in client.iter_reports()]
    assert 1 == len(reports)
    assert 2 == len(server.requests)


async def test_catalog_revalidates_with_etag() -> None:
    """The catalog sends the last X-ETag as If-None-Match and reuses its list on 304."""
    countries = [{"country_id": "uk", "name": "United Kingdom"}]
    server = Server(
        json_response(200, countries, headers={"X-ETag": "abc123"}),
        httpx.Response(304),
    )
    async with server.client() as client:
        first = await client.get_countries()
        second = await client.get_countries()
    assert first == second == [Country("uk", "United Kingdom")]
    assert "If-None-Match" not in server.requests[0].headers
    assert "abc123" == server.requests[1].headers["if-none-match"]


async def test_create_report_multipart_with_evidence() -> None:
    """create_report sends multipart form fields and the evidence file with its type."""
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    server = Server(json_response(200, {"status": "accepted", "decline_id": None}))
    async with server.client() as client:
        result = await client.create_report(AID, 4, message="2FA enabled here", evidence=png)
    assert ReportResult(ReportResultStatus.ACCEPTED, None) == result
    (request,) = server.requests
    assert f"/api/v1/activation/{AID}/report" == request.url.path
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    content = request.content
    assert b'name="reason_id"\r\n\r\n4\r\n' in content
    assert b'name="message"\r\n\r\n2FA enabled here\r\n' in content
    assert b'name="evidence"; filename="evidence.png"' in content
    assert b"Content-Type: image/png" in content
    assert png in content


async def test_create_report_reads_evidence_from_path_and_file(tmp_path: Any) -> None:
    """Evidence may be a path or an open binary file; its name and bytes are sent."""
    pdf = tmp_path / "proof.pdf"
    pdf.write_bytes(b"%PDF-1.7 test")
    declined = {"status": "declined", "decline_id": 2}
    server = Server(json_response(200, declined), json_response(200, declined))
    async with server.client() as client:
        by_path = await client.create_report(AID, 1, evidence=pdf)
        with pdf.open("rb") as f:
            await client.create_report(AID, 1, evidence=f)
    assert ReportResult(ReportResultStatus.DECLINED, 2) == by_path
    for request in server.requests:
        assert b'filename="proof.pdf"' in request.content
        assert b"Content-Type: application/pdf" in request.content
        assert b"%PDF-1.7 test" in request.content


async def test_create_report_without_evidence_is_still_multipart() -> None:
    """Without evidence the form is still multipart/form-data, as the API expects."""
    server = Server(json_response(200, {"status": "accepted", "decline_id": None}))
    async with server.client() as client:
        await client.create_report(AID, 7)
    (request,) = server.requests
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b"evidence" not in request.content


async def test_sandbox_and_default_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """sandbox=True selects the sandbox URL; base_url overrides both."""
    async with (
        AsyncPlatfone("k") as default,
        AsyncPlatfone("k", sandbox=True) as sandbox,
        AsyncPlatfone("k", base_url="http://x.test/api/v1/") as other,
    ):
        urls = [default.base_url, sandbox.base_url, other.base_url]
    expected = [
        "https://temp-number-api.com/api/v1",
        "https://temp-number-api.com/test/api/v1",
        "http://x.test/api/v1",
    ]
    assert expected == urls


async def test_injected_client_base_url_is_not_relied_on() -> None:
    """Requests go to the SDK's base_url even if the injected client has another one."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return json_response(200, {"total": 1, "reserved": 0})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://wrong.test")
    async with AsyncPlatfone("k", base_url=BASE_URL, http_client=http) as client:
        await client.get_balance()
    assert [BASE_URL + "/user/balance"] == seen
    assert not http.is_closed  # the caller owns it
    await http.aclose()


async def test_own_client_is_closed_by_aclose() -> None:
    """aclose() closes the httpx client the SDK created itself."""
    client = AsyncPlatfone("k")
    http = client._http.client
    await client.aclose()
    assert http.is_closed


async def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without api_key, PLATFONE_API_KEY is sent; with neither, a clear error."""
    from platfone_async import InvalidParameterError

    server = Server(default=json_response(200, {"total": 1, "reserved": 0}))
    monkeypatch.setenv("PLATFONE_API_KEY", "from-env")
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as http,
        AsyncPlatfone(base_url=BASE_URL, http_client=http) as client,
    ):
        await client.get_balance()
    assert ["from-env"] == [r.headers["X-Api-Key"] for r in server.requests]
    monkeypatch.delenv("PLATFONE_API_KEY")
    with pytest.raises(InvalidParameterError, match="PLATFONE_API_KEY"):
        AsyncPlatfone()


def test_a_client_dropped_unclosed_warns() -> None:
    """A client dropped without aclose() says so (a ResourceWarning, so a test that leaks
    one fails under warnings-as-errors); a closed one, or one on an injected httpx client
    (the caller's to close), does not."""
    with pytest.warns(ResourceWarning, match="unclosed AsyncPlatfone"):
        AsyncPlatfone("k")  # dropped at once (no reference cycle keeps it)
    closed = AsyncPlatfone("k")
    anyio.run(closed.aclose)
    http = httpx.AsyncClient(transport=httpx.MockTransport(Server().handler))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del closed
        AsyncPlatfone("k", http_client=http)
        gc.collect()
    anyio.run(http.aclose)
