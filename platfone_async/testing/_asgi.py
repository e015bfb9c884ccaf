"""Plain ASGI plumbing: read a request, send a response, parse forms - no framework."""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import attrs

from ._wire import WireError, bad_request, dump_json

__all__ = ["Receive", "Request", "Response", "Scope", "Send", "read_request", "send_response"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@attrs.define
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = attrs.Factory(dict)

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-api-key")

    def json_object(self) -> dict[str, Any]:
        try:
            document = json.loads(self.body or b"null")
        except ValueError:
            raise bad_request("the body is not valid JSON") from None
        if not isinstance(document, dict):
            raise bad_request("the body must be a JSON object")
        return document

    def form(self) -> dict[str, tuple[bytes, str | None]]:
        """The fields of a report: multipart, urlencoded or JSON; name -> (value, filename)."""
        kind = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            return _parse_multipart(self.headers["content-type"], self.body)
        if kind == "application/x-www-form-urlencoded":
            fields = urllib.parse.parse_qs(self.body.decode("latin-1"), keep_blank_values=True)
            return {name: (values[-1].encode(), None) for name, values in fields.items()}
        document = self.json_object()
        form: dict[str, tuple[bytes, str | None]] = {}
        for name, value in document.items():
            if value is None:
                continue
            if name == "evidence" and isinstance(value, str):
                try:
                    form[name] = (base64.b64decode(value, validate=True), None)
                except binascii.Error:
                    raise bad_request("evidence in JSON must be base64") from None
            else:
                form[name] = (str(value).encode(), None)
        return form


@attrs.define
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = attrs.Factory(dict)

    @classmethod
    def json(
        cls, document: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return cls(
            status, dump_json(document), {"content-type": "application/json", **(headers or {})}
        )

    @classmethod
    def error(cls, error: WireError) -> Response:
        return cls.json(error.body(), error.status, error.headers)


async def read_request(scope: Scope, receive: Receive) -> Request:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return Request(
        method=scope["method"].upper(),
        path=scope["path"],
        query={name: values[-1] for name, values in query.items()},
        headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        body=b"".join(chunks),
    )


async def send_response(send: Send, response: Response) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def serve_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[bytes, str | None]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise bad_request("the multipart body could not be parsed")
    form: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        form[name] = (payload if isinstance(payload, bytes) else b"", part.get_filename())
    return form
