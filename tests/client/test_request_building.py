"""The SDK builds its requests without ``httpx.AsyncClient.build_request`` on the hot path
(it reuses the merged headers). These tests hold it to sending exactly what
``build_request`` would have built, on an injected client that sets headers, params and
cookies of its own, and to following that client when it changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from platfone_async import AsyncPlatfone
from platfone_async._http import USER_AGENT
from platfone_async.testing import VirtualClock
from tests._support import ACTIVATION, AID, API_KEY, BASE_URL, json_response

pytestmark = pytest.mark.anyio

HISTORY = {"activations": [], "page": 2, "limit": 10, "pages": 2, "total": 10}


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.url.path.endswith("/history"):
            return json_response(200, HISTORY)
        return json_response(200, ACTIVATION)


def _theirs(recorder: Recorder, cls: type[httpx.AsyncClient] = httpx.AsyncClient) -> Any:
    return cls(
        transport=httpx.MockTransport(recorder),
        headers={"X-Trace": "t-1", "User-Agent": "their-agent", "Accept-Language": "en"},
        params={"tenant": "acme"},
        cookies={"session": "s-1"},
    )


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def http(recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    async with _theirs(recorder) as http:
        yield http


def _client(http: httpx.AsyncClient, **kwargs: Any) -> AsyncPlatfone:
    return AsyncPlatfone(
        API_KEY,
        base_url=BASE_URL,
        http_client=http,
        clock=VirtualClock(),
        rate_limits=None,
        success_rate_guard="off",
        **kwargs,
    )


def _as_built_by_httpx(http: httpx.AsyncClient, sent: httpx.Request, timeout: Any) -> None:
    """``sent`` is what ``http.build_request`` makes of the same call."""
    body = sent.content
    expected = httpx.AsyncClient.build_request(
        http,
        sent.method,
        str(sent.url.copy_with(query=None)),
        params=httpx.QueryParams(
            [(k, v) for k, v in sent.url.params.multi_items() if k != "tenant"]
        ),
        content=body or None,
        headers={
            "X-Api-Key": API_KEY,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            **({"Content-Type": "application/json"} if body else {}),
        },
        timeout=timeout,
    )
    assert expected.url == sent.url
    assert sorted(expected.headers.multi_items()) == sorted(sent.headers.multi_items())
    assert expected.extensions == sent.extensions
    assert expected.content == sent.content


async def test_a_get_is_what_build_request_would_send(
    http: httpx.AsyncClient, recorder: Recorder
) -> None:
    async with _client(http, timeout=7.5) as client:
        await client.get_activation(AID)
    (sent,) = recorder.requests
    assert "acme" == sent.url.params["tenant"]  # the client's params
    assert "session=s-1" == sent.headers["cookie"]  # and its cookies
    assert "t-1" == sent.headers["x-trace"]  # and its headers,
    assert USER_AGENT == sent.headers["user-agent"]  # ours where both set one
    _as_built_by_httpx(http, sent, 7.5)


async def test_a_query_and_a_json_body_are_what_build_request_would_send(
    http: httpx.AsyncClient, recorder: Recorder
) -> None:
    async with _client(http) as client:
        await client.get_activation_history(page=2, limit=10)
        await client.create_activation("netflix", "us", max_price=50)
    history, order = recorder.requests
    assert {"tenant": "acme", "page": "2", "limit": "10"}.items() <= dict(
        history.url.params
    ).items()
    assert b'"max_price":50' in order.content.replace(b" ", b"")
    for sent in recorder.requests:
        _as_built_by_httpx(http, sent, httpx.Timeout(30.0))


async def test_headers_changed_on_the_client_apply_to_the_next_call(
    http: httpx.AsyncClient, recorder: Recorder
) -> None:
    async with _client(http) as client:
        await client.get_activation(AID)
        http.headers["X-Trace"] = "t-2"
        await client.get_activation(AID)
        http.headers = httpx.Headers({"X-Other": "o"})
        await client.get_activation(AID)
    first, second, third = (r.headers for r in recorder.requests)
    assert ("t-1", "t-2", None) == (first["x-trace"], second["x-trace"], third.get("x-trace"))
    assert ("o", API_KEY) == (third["x-other"], third["x-api-key"])


async def test_a_timeout_of_with_options_is_the_one_sent(
    http: httpx.AsyncClient, recorder: Recorder
) -> None:
    async with _client(http, timeout=30.0) as client:
        await client.with_options(timeout=2.0).get_activation(AID)
        await client.get_activation(AID)
    short, default = (r.extensions["timeout"] for r in recorder.requests)
    assert (2.0, 30.0) == (short["read"], default["read"])


async def test_what_a_hook_writes_on_a_request_stays_on_that_request(
    recorder: Recorder,
) -> None:
    async def scribble(request: httpx.Request) -> None:
        request.extensions["timeout"]["read"] = 0.001
        request.extensions["mine"] = True
        request.headers["X-Scribbled"] = "yes"

    async with _theirs(recorder) as http:
        http.event_hooks["request"].append(scribble)
        async with _client(http) as client:
            await client.get_activation(AID)
            http.event_hooks["request"].clear()
            await client.get_activation(AID)
    _, clean = recorder.requests
    assert 30.0 == clean.extensions["timeout"]["read"]
    assert "mine" not in clean.extensions
    assert "x-scribbled" not in clean.headers


async def test_a_client_class_with_its_own_build_request_is_used(recorder: Recorder) -> None:
    class Signing(httpx.AsyncClient):
        def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:
            request = super().build_request(method, url, **kwargs)
            request.headers["X-Signature"] = "signed"
            return request

    async with _theirs(recorder, Signing) as http, _client(http) as client:
        await client.get_activation(AID)
    (sent,) = recorder.requests
    assert "signed" == sent.headers["x-signature"]
    _ = sent.headers.pop("x-signature")
    _as_built_by_httpx(http, sent, httpx.Timeout(30.0))
