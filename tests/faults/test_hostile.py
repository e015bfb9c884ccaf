"""Hostile and broken responses: a typed error or a tolerant model, never a crash, never a
lost SMS code."""

from __future__ import annotations

import email.utils
import gzip
import json
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

import platfone_async as pf
from platfone_async._errors import MAX_BODY_KEPT
from platfone_async.testing import VirtualClock
from tests._faultkit import API_KEY as FAULTS_KEY
from tests._faultkit import RewritingTransport, new_emulator
from tests._support import ACTIVATION, AID, Server, json_response

pytestmark = pytest.mark.anyio

TRUNCATED = json.dumps(ACTIVATION)[:-40].encode()
HTML = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"


def _body(**changes: Any) -> bytes:
    return json.dumps({**ACTIVATION, **changes}).encode()


async def test_a_truncated_body_is_read_again() -> None:
    """A GET whose 200 is cut short is retried, and the whole answer decodes."""
    clock = VirtualClock()
    server = Server(httpx.Response(200, content=TRUNCATED), json_response(200, ACTIVATION))
    async with clock.autojump(), server.client(clock) as client:
        activation = await client.get_activation(AID)
    assert (AID, 2) == (activation.activation_id, len(server.requests))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(TRUNCATED, "not valid JSON"), (HTML, "not valid JSON"), (b"", "not valid JSON")],
    ids=["truncated", "html", "empty"],
)
async def test_a_body_that_stays_broken_is_a_decode_error(content: bytes, fragment: str) -> None:
    """Still broken after the retries: ResponseDecodeError with the body, never a crash."""
    clock = VirtualClock()
    server = Server(default=httpx.Response(200, content=content))
    async with clock.autojump(), server.client(clock) as client:
        with pytest.raises(pf.ResponseDecodeError, match=fragment) as caught:
            await client.get_activation(AID)
    assert (content.decode(), 3) == (caught.value.body, len(server.requests))


async def test_an_html_error_page_is_a_server_error() -> None:
    """A proxy's HTML 503 maps to ServerError with a short message."""
    server = Server(default=httpx.Response(503, content=HTML))
    async with server.client(max_retries=0) as client:
        with pytest.raises(pf.ServerError, match="Service temporarily unavailable"):
            await client.get_balance()


async def test_an_error_body_in_a_200_order_is_a_refusal() -> None:
    """A 200 whose body is an error object refuses the order: no reconciliation, the slot
    back."""
    body = {"errorName": "NoNumbersAvailableException", "errorMessage": "none"}
    server = Server(json_response(200, body))
    async with server.client() as client:
        with pytest.raises(pf.NoNumbersAvailableError):
            await client.create_activation("netflix", "us")
        slots = (await client.rate_limit_state()).slots
    assert (1, 0) == (len(server.requests), slots.in_use)


async def test_a_huge_success_body_is_not_read_to_its_end() -> None:
    """A 200 beyond max_response_bytes: ResponseDecodeError, .body cut to 64 KB and flagged."""
    server = Server(default=httpx.Response(200, content=b"[" + b"1," * 1_000_000 + b"1]"))
    async with server.client(max_response_bytes=1_000_000) as client:
        with pytest.raises(pf.ResponseDecodeError, match="larger than") as caught:
            await client.get_countries()
    assert (MAX_BODY_KEPT, True) == (len(caught.value.body), caught.value.body_truncated)
    assert 1 == len(server.requests)


async def test_a_huge_error_page_keeps_a_bounded_body() -> None:
    """A 5 MB HTML 502: ServerError with a short message and 64 KB of body, flagged."""
    page = b"<html>" + b"x" * 5_000_000 + b"</html>"
    server = Server(default=httpx.Response(502, content=page))
    async with server.client(max_retries=0) as client:
        with pytest.raises(pf.ServerError) as caught:
            await client.get_balance()
    error = caught.value
    assert (MAX_BODY_KEPT, True) == (len(error.body), error.body_truncated)
    assert len(str(error)) < 300


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"price": "lots"}, "$.price"),
        ({"expire_at": {"when": "soon"}}, "$.expire_at"),
        ({"phone": None}, "$.phone"),
    ],
    ids=["wrong-type", "object-for-a-time", "null-for-a-string"],
)
async def test_a_field_of_the_wrong_type_names_its_path(changes: dict[str, Any], path: str) -> None:
    """A field that does not fit: ResponseDecodeError with its JSON path."""
    server = Server(httpx.Response(200, content=_body(**changes)))
    async with server.client() as client:
        with pytest.raises(pf.ResponseDecodeError) as caught:
            await client.get_activation(AID)
    assert path == caught.value.path


async def test_a_missing_required_field_is_a_decode_error() -> None:
    """No activation_id: ResponseDecodeError, not a KeyError."""
    body = {k: v for k, v in ACTIVATION.items() if k != "activation_id"}
    server = Server(json_response(200, body))
    async with server.client() as client:
        with pytest.raises(pf.ResponseDecodeError):
            await client.get_activation(AID)


async def test_extra_fields_and_unknown_statuses_are_tolerated() -> None:
    """Fields the model does not know are ignored; a new status is kept as its string."""
    body = _body(sms_status="smsDelayed", activation_status="paused", surprise={"a": 1})
    server = Server(httpx.Response(200, content=body))
    async with server.client() as client:
        activation = await client.get_activation(AID)
    assert ("smsDelayed", "paused") == (activation.sms_status, activation.activation_status)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_body(sms_code="482913", sms_status="smsReceived", price="lots"), ("482913", AID)),
        (_body(sms_code=482913, expire_at="never"), ("482913", AID)),
        (json.dumps({**ACTIVATION, "sms_code": "77 31"}).encode()[:-60], ("77 31", AID)),
        (b'<html>{"activation_id": "abc", "sms_code": "9911"}</html>', ("9911", "abc")),
        (b'{"activation_id": "a", "sms_code": "1234', (None, "a")),
    ],
    ids=["bad-field", "numeric-code", "truncated-after-code", "code-in-html", "code-cut-off"],
)
async def test_an_sms_code_in_a_broken_body_is_surfaced(
    content: bytes, expected: tuple[str | None, str]
) -> None:
    """A body that fails to decode but carries an SMS code: the error keeps the code and
    the activation id (a code cut mid-string is not guessed)."""
    server = Server(default=httpx.Response(200, content=content))
    async with server.client(retry_policy=pf.RetryPolicy.none()) as client:
        with pytest.raises(pf.ResponseDecodeError) as caught:
            await client.get_activation(AID)
    assert expected == (caught.value.sms_code, caught.value.activation_id)


async def test_a_page_of_activations_does_not_lend_its_codes() -> None:
    """A broken history page names several activations: no code is attached to the error."""
    page = {"activations": [ACTIVATION, {**ACTIVATION, "sms_code": "5555"}], "page": 1}
    content = json.dumps(page).encode()[:-10]
    server = Server(default=httpx.Response(200, content=content))
    async with server.client(retry_policy=pf.RetryPolicy.none()) as client:
        with pytest.raises(pf.ResponseDecodeError) as caught:
            await client.get_activation_history()
    assert (None, None) == (caught.value.sms_code, caught.value.activation_id)


async def test_a_watch_polls_through_a_broken_body_to_the_code() -> None:
    """A poll whose body does not fit (but carries the code) is polled through: the next
    good answer gives wait_for_sms the code."""
    clock = VirtualClock()
    waiting = {**ACTIVATION, "expire_at": int(clock.time()) + 600}
    received = {**waiting, "sms_status": "smsReceived", "sms_code": "314159"}
    server = Server(
        json_response(200, waiting),
        httpx.Response(200, content=json.dumps({**received, "price": "lots"}).encode()),
        json_response(200, received),
    )
    async with clock.autojump(), server.client(clock) as client:
        state = await client.wait_for_sms(AID, timeout=60)
    assert "314159" == state.sms_code


async def test_a_done_action_with_a_garbled_body_is_done() -> None:
    """A cancel answered 200 with a body that is not JSON succeeded: no error."""
    server = Server(httpx.Response(200, content=b"<html>OK</html>"))
    async with server.client() as client:
        await client.cancel_activation(AID)
    assert 1 == len(server.requests)


async def test_a_retried_cancel_that_already_happened_is_not_an_error() -> None:
    """The first cancel's answer is lost; the retry meets a 409 because it is done: the
    activation shows it canceled, so the call succeeds."""
    clock = VirtualClock()

    def lost(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    conflict = {"errorName": "ActivationStateException", "errorMessage": "not active"}
    server = Server(
        lost,
        json_response(409, conflict),
        json_response(200, {**ACTIVATION, "activation_status": "canceled"}),
    )
    async with clock.autojump(), server.client(clock) as client:
        await client.cancel_activation(AID)
    assert ["PUT", "PUT", "GET"] == [r.method for r in server.requests]


async def test_a_first_cancel_answered_409_is_still_an_error() -> None:
    """A 409 on the first attempt is the server's word: ConflictError."""
    conflict = {"errorName": "ActivationStateException", "errorMessage": "not active"}
    server = Server(json_response(409, conflict))
    async with server.client() as client:
        with pytest.raises(pf.ConflictError):
            await client.cancel_activation(AID)
    assert 1 == len(server.requests)


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    """A 503 whose Retry-After is an HTTP date 20 s ahead waits about 20 s."""
    clock = VirtualClock()
    when = email.utils.formatdate(clock.time() + 20, usegmt=True)
    server = Server(
        httpx.Response(503, headers={"Retry-After": when}),
        json_response(200, {"total": 1, "reserved": 0}),
    )
    async with clock.autojump(), server.client(clock) as client:
        start = clock.time()
        await client.get_balance()
    assert 19 <= clock.time() - start <= 21


# -- every endpoint through every kind of unreadable body -----------------------------------

Call = Callable[[pf.AsyncPlatfone], Awaitable[object]]

READS: dict[str, Call] = {
    "get_balance": lambda c: c.get_balance(),
    "get_activation": lambda c: c.get_activation(AID),
    "get_activation_history": lambda c: c.get_activation_history(),
    "get_price": lambda c: c.get_price("netflix", "us"),
    "get_prices_by_country": lambda c: c.get_prices_by_country(),
    "get_prices_by_service": lambda c: c.get_prices_by_service(),
    "get_countries": lambda c: c.get_countries(),
    "get_services": lambda c: c.get_services(),
    "get_popular_services": lambda c: c.get_popular_services(),
    "get_report_reasons": lambda c: c.get_report_reasons(AID),
    "get_report": lambda c: c.get_report(AID),
    "get_reports": lambda c: c.get_reports(),
    "create_report": lambda c: c.create_report(AID, 1, message="no SMS"),
}
#: Writes whose 200 says all there is: a body they cannot read does not undo them.
WRITES: dict[str, Call] = {
    "retry_activation": lambda c: c.retry_activation(AID),
    "cancel_activation": lambda c: c.cancel_activation(AID),
    "finalize_activation": lambda c: c.finalize_activation(AID),
}

BAD_BODIES = {
    "nested-lists": b"[" * 50_000,
    "nested-objects": b'{"a":' * 10_000,
    "too-large": b"[" + b"1," * 100_000 + b"1]",
    "invalid-utf8": b'{"activation_id": "\xff\xfe", "total": "\xc3\x28"}',
    "not-json": HTML,
    "wrong-shape-object": b'{"unexpected": [1, 2, 3]}',
    "wrong-shape-list": b'[1, "two", null, {"three": 3}]',
    "wrong-shape-scalar": b'"just a string"',
    "null": b"null",
}
#: Small enough that the "too-large" body (200 KB) is beyond it, far above the others.
CAP = 64 * 1024


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
@pytest.mark.parametrize("call", READS.values(), ids=READS.keys())
async def test_every_read_meets_every_bad_body_with_a_decode_error(call: Call, body: bytes) -> None:
    """Deep, huge, non-UTF-8, non-JSON or misshapen: ResponseDecodeError, nothing else."""
    clock = VirtualClock()
    server = Server(default=httpx.Response(200, content=body))
    async with clock.autojump(), server.client(clock, max_response_bytes=CAP) as client:
        with pytest.raises(pf.ResponseDecodeError) as caught:
            await call(client)
    assert 200 == caught.value.status_code
    assert caught.value.response is not None


@pytest.mark.parametrize("call", READS.values(), ids=READS.keys())
async def test_every_read_beyond_the_cap_says_so(call: Call) -> None:
    """A body beyond max_response_bytes is named as such (not as invalid JSON), whichever
    endpoint read it, and keeps only its first bytes, flagged."""
    clock = VirtualClock()
    server = Server(default=httpx.Response(200, content=BAD_BODIES["too-large"]))
    async with clock.autojump(), server.client(clock, max_response_bytes=CAP) as client:
        with pytest.raises(
            pf.ResponseDecodeError, match="larger than max_response_bytes"
        ) as caught:
            await call(client)
    assert caught.value.body_truncated


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
@pytest.mark.parametrize("call", WRITES.values(), ids=WRITES.keys())
async def test_every_write_answered_with_a_bad_body_is_done(call: Call, body: bytes) -> None:
    """A write answered 200 with a body it cannot read is done: it reads no body."""
    clock = VirtualClock()
    server = Server(default=httpx.Response(200, content=body))
    async with clock.autojump(), server.client(clock, max_response_bytes=CAP) as client:
        assert None is await call(client)
    assert 1 == len(server.requests)


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_a_watch_polls_through_every_bad_body_to_its_timeout(body: bytes) -> None:
    """wait_for_sms polls through unreadable answers (a later one may hold the code) and
    ends with its typed timeout, never a bare exception."""
    clock = VirtualClock()
    server = Server(default=httpx.Response(200, content=body))
    async with clock.autojump(), server.client(clock, max_response_bytes=CAP) as client:
        with pytest.raises(pf.WaitTimeoutError):
            await client.wait_for_sms(AID, timeout=30)
    assert len(server.requests) >= 2


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_an_order_meets_every_bad_body_with_an_unknown_outcome(body: bytes) -> None:
    """An order (and the history it is looked for in) answered unreadably: the order is
    reconciled, not resent - OrderOutcomeUnknownError, never a bare exception."""
    clock = VirtualClock()
    server = Server(default=httpx.Response(200, content=body))
    async with clock.autojump(), server.client(clock, max_response_bytes=CAP) as client:
        with pytest.raises(pf.OrderOutcomeUnknownError) as caught:
            await client.create_activation("netflix", "us")
    assert isinstance(caught.value.last_error, pf.ResponseDecodeError)
    assert 1 == sum(r.method == "POST" for r in server.requests)


@pytest.mark.parametrize(
    "body",
    [BAD_BODIES["nested-lists"], BAD_BODIES["too-large"], BAD_BODIES["invalid-utf8"]],
    ids=["nested", "too-large", "invalid-utf8"],
)
async def test_an_order_placed_but_answered_unreadably_is_found(body: bytes) -> None:
    """The server placed the order and answered it with a body the SDK cannot read: the
    order is reconciled, its activation returned, and no other number is open."""
    clock = VirtualClock()
    emulator = new_emulator(clock)

    def spoil(request: httpx.Request, response: httpx.Response, _: bytes) -> bytes | None:
        return body if request.method == "POST" else None

    transport = RewritingTransport(httpx.ASGITransport(app=emulator.app), spoil)
    async with (
        clock.autojump(),
        httpx.AsyncClient(transport=transport) as http,
        pf.AsyncPlatfone(
            FAULTS_KEY,
            base_url=emulator.base_url,
            http_client=http,
            clock=clock,
            max_response_bytes=CAP,
        ) as client,
    ):
        activation = await client.create_activation("telegram", "uk")
    opened = emulator.activations()
    assert [activation.activation_id] == [a["activation_id"] for a in opened]
    assert 1 == emulator.request_count("create_activation")


# -- compressed answers: inflated a bounded piece at a time ------------------------------------


def _encoded(raw: bytes, encoding: str) -> httpx.Response:
    """A 200 whose body is ``raw`` as sent (httpx inflates nothing before the SDK reads)."""
    return httpx.Response(200, stream=httpx.ByteStream(raw), headers={"Content-Encoding": encoding})


def _gzipped(data: bytes) -> httpx.Response:
    return _encoded(gzip.compress(data), "gzip")


async def test_a_gzipped_answer_decodes() -> None:
    """A gzip body within the cap is inflated and decoded as usual."""
    server = Server(_gzipped(json.dumps({"total": 7, "reserved": 1}).encode()))
    async with server.client() as client:
        balance = await client.get_balance()
    assert 7 == balance.total


async def test_a_gzip_bomb_stops_at_the_cap() -> None:
    """100 MB of zeros in a 100 KB gzip body: ResponseDecodeError at the cap, and the
    call's peak memory is about the cap, not the inflated size."""
    cap = 1024 * 1024
    bomb = gzip.compress(b"0" * 100_000_000)
    server = Server(default=lambda _: _encoded(bomb, "gzip"))
    async with server.client(max_response_bytes=cap) as client:
        with pytest.raises(pf.ResponseDecodeError):  # a first call sets the client up
            await client.get_countries()
        tracemalloc.start()
        try:
            with pytest.raises(pf.ResponseDecodeError, match="max_response_bytes"):
                await client.get_countries()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < cap + 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize(
    "response",
    [
        _encoded(b"not gzip at all", "gzip"),
        _encoded(b"\x1b\x00", "br"),
    ],
    ids=["corrupt-gzip", "unasked-brotli"],
)
async def test_a_body_that_cannot_be_inflated_is_a_decode_error(response: httpx.Response) -> None:
    """A corrupt or unasked-for Content-Encoding: ResponseDecodeError, not httpx's own."""
    server = Server(default=response)
    async with server.client(retry_policy=pf.RetryPolicy.none()) as client:
        with pytest.raises(pf.ResponseDecodeError):
            await client.get_balance()
