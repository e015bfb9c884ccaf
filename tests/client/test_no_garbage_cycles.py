"""A call leaves nothing for the cyclic garbage collector: httpx binds a response's stream
to the response, and the SDK unbinds it once the body is read. Among thousands of
sleeping watchers every collection is expensive, so a poll must not make any."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from platfone_async import AsyncPlatfone, NotFoundError
from tests._support import ACTIVATION, AID, API_KEY, BASE_URL, json_response

pytestmark = pytest.mark.anyio


def _chunked(status: int, body: object) -> httpx.Response:
    """A response without content-length: the SDK reads it through its capped reader."""
    data = json.dumps(body).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield data[:10]
        yield data[10:]

    return httpx.Response(status, content=chunks())


@pytest.fixture
def saved_garbage() -> Iterator[Callable[[], list[object]]]:
    """What the collector finds unreachable from here on, kept for inspection."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:

        def found() -> list[object]:
            gc.collect()
            return list(gc.garbage)

        yield found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def _httpx_objects(garbage: list[object]) -> list[str]:
    kinds = (httpx.Request, httpx.Response, httpx.AsyncByteStream)
    return sorted({type(o).__name__ for o in garbage if isinstance(o, kinds)})


@pytest.mark.parametrize("respond", [json_response, _chunked], ids=["sized", "chunked"])
async def test_successful_calls_leave_no_response_for_the_collector(
    respond: Callable[[int, object], httpx.Response],
    saved_garbage: Callable[[], list[object]],
) -> None:
    transport = httpx.MockTransport(lambda request: respond(200, ACTIVATION))
    async with AsyncPlatfone(
        API_KEY, base_url=BASE_URL, http_client=httpx.AsyncClient(transport=transport)
    ) as client:
        for _ in range(20):
            activation = await client.get_activation(AID)
        assert AID == activation.activation_id
        assert [] == _httpx_objects(saved_garbage())


async def test_a_response_read_and_unbound_still_reads_as_httpx_promises() -> None:
    """What an event hook kept of the response: its content, a re-read, the bytes
    iterated, and a raw read refused as for any consumed stream."""
    kept: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        kept.append(response)

    transport = httpx.MockTransport(lambda request: _chunked(404, {"error": "NotFound"}))
    http = httpx.AsyncClient(transport=transport, event_hooks={"response": [keep]})
    async with AsyncPlatfone(API_KEY, base_url=BASE_URL, http_client=http) as client:
        with pytest.raises(NotFoundError):
            await client.get_activation(AID)
    (response,) = kept
    assert b'{"error": "NotFound"}' == response.content
    assert response.content == await response.aread()
    assert response.content == b"".join([chunk async for chunk in response.aiter_bytes()])
    assert response.is_closed
    assert response.elapsed.total_seconds() >= 0
    with pytest.raises(httpx.StreamConsumed):
        async for _ in response.aiter_raw():
            pass
