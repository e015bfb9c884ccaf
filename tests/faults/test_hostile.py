"""Hostile and broken responses: a typed error or a tolerant model, never a crash, never a
lost SMS code."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import httpx
import pytest

import platfone_async as pf
from platfone_async._errors import MAX_BODY_KEPT
from platfone_async.testing import VirtualClock
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
