"""An answer echoing the API key: every copy of it is masked before the SDK keeps it."""

from __future__ import annotations

import json
import logging
import traceback
import urllib.parse

import httpx
import pytest

import platfone_async as pf
from platfone_async._errors import MAX_BODY_KEPT
from tests._support import ACTIVATION, AID, BASE_URL, json_response

pytestmark = pytest.mark.anyio

#: A key with characters JSON and URLs escape.
KEY = "sk-live/ODD+key=0123456789abcdef"


def _shown(error: BaseException) -> str:
    parts = [str(error), repr(error), repr(vars(error))]
    parts += traceback.format_exception(type(error), error, error.__traceback__)
    response = getattr(error, "response", None)
    if response is not None:
        parts += [response.text, repr(response.headers), repr(response.request.headers)]
    return "\n".join(parts)


def _client(reply: httpx.Response) -> tuple[pf.AsyncPlatfone, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: reply))
    client = pf.AsyncPlatfone(
        KEY, base_url=BASE_URL, http_client=http, retry_policy=pf.RetryPolicy.none()
    )
    return client, http


@pytest.mark.parametrize(
    "echoed",
    [KEY, json.dumps(KEY)[1:-1], urllib.parse.quote(KEY, safe=""), urllib.parse.quote_plus(KEY)],
    ids=["plain", "json-escaped", "url-encoded", "form-encoded"],
)
async def test_every_form_of_the_key_is_masked(
    echoed: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The key echoed as sent, JSON-escaped or URL-encoded, in a 400: masked in the
    message, .body, .response, .headers, the traceback and the log."""
    body = {"errorName": "BadRequestException", "errorMessage": f"bad key {echoed} here"}
    reply = json_response(400, body, headers={"X-Echo": echoed})
    client, http = _client(reply)
    caplog.set_level(logging.DEBUG)
    async with http, client:
        with pytest.raises(pf.BadRequestError) as caught:
            await client.get_balance()
    shown = _shown(caught.value) + "\n".join(r.getMessage() for r in caplog.records)
    assert echoed not in shown
    assert "bad key *** here" == caught.value.message
    assert "***" == caught.value.headers["x-echo"]


async def test_a_body_cut_in_the_middle_of_the_key_loses_that_part_too() -> None:
    """A huge error page whose kept part ends inside the key: the key's prefix is masked."""
    page = ("x" * (MAX_BODY_KEPT - 10) + KEY + "y" * 2_000_000).encode()
    client, http = _client(httpx.Response(502, content=page))
    async with http, client:
        with pytest.raises(pf.ServerError) as caught:
            await client.get_balance()
    assert caught.value.body_truncated
    assert KEY[:10] not in caught.value.body
    assert caught.value.body.endswith("***")


async def test_a_key_in_a_field_that_does_not_fit_leaves_no_trace() -> None:
    """A 200 whose price field is the key: ResponseDecodeError with the key masked in its
    message, body and path, and no chained cause that would print it."""
    reply = json_response(200, {**ACTIVATION, "price": KEY, KEY: 1})
    client, http = _client(reply)
    async with http, client:
        with pytest.raises(pf.ResponseDecodeError) as caught:
            await client.get_activation(AID)
    assert KEY not in _shown(caught.value)
    assert "$.price" == caught.value.path
    assert caught.value.response is not None
    assert "***" == caught.value.response.request.headers["x-api-key"]
