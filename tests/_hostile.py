"""A small hostile HTTP server on loopback, answering every request badly on purpose.

Raw TCP through anyio (``create_tcp_listener``), so it runs on asyncio and trio alike and
nothing in httpx's test helpers smooths over what it sends. One mode per behaviour: a
body (deep, misshapen, not UTF-8), a huge body streamed forever, a trickle of one byte at
a time, a redirect, an error page echoing the request (with its ``X-Api-Key``). Every
request it reads is recorded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
import attrs

Stream = anyio.abc.ByteStream
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


@attrs.frozen
class RawRequest:
    """A request as the server read it: the request line, the headers and the body."""

    method: str
    target: str
    headers: dict[str, str]
    head: bytes
    body: bytes


Mode = Callable[[Stream, RawRequest], Awaitable[None]]


@attrs.define
class HostileServer:
    """A running server: where it listens and what it was sent."""

    base_url: str
    host: str
    port: int
    requests: list[RawRequest] = attrs.Factory(list)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} Hostile", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Mode:
    """Answer ``status`` with ``body`` (and its length)."""

    async def mode(stream: Stream, request: RawRequest) -> None:
        fields = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        await stream.send(_head(status, {**fields, **(headers or {})}) + body)

    return mode


def endless(chunk: bytes = b"1," * 32 * 1024, *, declare: int | None = 50_000_000) -> Mode:
    """A 200 body of ``declare`` bytes (or chunked without an end) sent as fast as read."""

    async def mode(stream: Stream, request: RawRequest) -> None:
        if declare is None:
            await stream.send(_head(200, {"Transfer-Encoding": "chunked"}) + b"1\r\n[\r\n")
            piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            while True:
                await stream.send(piece)
        await stream.send(_head(200, {"Content-Length": str(declare)}) + b"[")
        sent = 1
        while sent < declare:
            part = chunk[: declare - sent]
            await stream.send(part)
            sent += len(part)

    return mode


def trickle(interval: float, *, length: int = 10_000) -> Mode:
    """A 200 whose body arrives one byte every ``interval`` seconds (real time)."""

    async def mode(stream: Stream, request: RawRequest) -> None:
        await stream.send(_head(200, {"Content-Length": str(length)}))
        for _ in range(length):
            await stream.send(b" ")
            await anyio.sleep(interval)

    return mode


def redirect(status: int, location: str) -> Mode:
    """A redirect to ``location``."""
    return answer(status, b"", {"Location": location})


def echo(status: int, *, html: bool = False) -> Mode:
    """An error page quoting the request it answers, headers (and key) included."""

    async def mode(stream: Stream, request: RawRequest) -> None:
        quoted = (request.head + request.body).decode("latin-1")
        if html:
            body = f"<html><body><pre>Bad gateway for\n{quoted}</pre></body></html>".encode()
        else:
            body = json.dumps(
                {"errorName": "BadRequestException", "errorMessage": f"cannot parse {quoted}"}
            ).encode()
        await answer(status, body)(stream, request)

    return mode


async def _read_request(stream: Stream) -> RawRequest | None:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        try:
            buffer += await stream.receive()
        except _GONE:
            return None
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        try:
            body += await stream.receive()
        except _GONE:
            return None
    return RawRequest(method, target, headers, head + b"\r\n\r\n", body)


@contextlib.asynccontextmanager
async def hostile_server(mode: Mode) -> AsyncIterator[HostileServer]:
    """Serve ``mode`` on a free loopback port for the block; stopped on leaving."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    server = HostileServer(f"http://127.0.0.1:{port}/api/v1", "127.0.0.1", port)

    async def handle(stream: Stream) -> None:
        async with stream:
            request = await _read_request(stream)
            if request is None:
                return
            server.requests.append(request)
            with contextlib.suppress(*_GONE):
                await mode(stream, request)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


def by_method(**modes: Mode) -> Mode:
    """One mode per HTTP method (``POST=...``, ``GET=...``); ``other=`` for the rest."""

    async def mode(stream: Stream, request: RawRequest) -> None:
        await modes.get(request.method, modes["other"])(stream, request)

    return mode
