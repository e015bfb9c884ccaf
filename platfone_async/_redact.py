"""Keeping the API key out of everything an error keeps or shows from a response.

A server (or a proxy in front of it) may echo the request back: an error page quoting
the headers, a body repeating the key. Whatever the SDK keeps from such a response - an
exception's message and ``.body``, its ``.response`` and ``.headers``, a log line, a
chained cause in a traceback - has every occurrence of the key replaced by :data:`MASK`
before it is stored. The key is looked for as sent, JSON-escaped and URL-encoded, and a
body cut short in the middle of the key loses that prefix too.

Only the error path pays for this: a successful answer is handed over as it came.
"""

from __future__ import annotations

import json
import traceback
import urllib.parse
from typing import AnyStr

import httpx

from ._errors import APIError, PlatfoneError, ResponseDecodeError

__all__ = ["MASK", "Redactor"]

#: What stands in for the API key wherever a response echoed it.
MASK = "***"

_KEY_HEADER = "x-api-key"

# A trailing fragment of the key shorter than this is left alone: three characters of a
# long key tell nothing, and masking every body that ends in "s" would garble them.
_MIN_PREFIX = 4


class Redactor:
    """Masks one API key in text, bytes, headers, responses and exceptions."""

    __slots__ = ("_bytes", "_key", "_texts")

    def __init__(self, api_key: str) -> None:
        self._key = api_key
        forms = {
            api_key,
            json.dumps(api_key)[1:-1],
            urllib.parse.quote(api_key, safe=""),
            urllib.parse.quote_plus(api_key, safe=""),
        }
        # Longest first: a form containing another is replaced whole.
        self._texts = tuple(sorted(forms, key=len, reverse=True))
        self._bytes = tuple(form.encode() for form in self._texts)

    def __repr__(self) -> str:
        return "<Redactor>"

    def text(self, text: str) -> str:
        """``text`` with every form of the key, and a trailing fragment of it, masked."""
        for form in self._texts:
            if form in text:
                text = text.replace(form, MASK)
        return _cut_tail(text, self._key, MASK)

    def raw(self, data: bytes) -> bytes:
        """As :meth:`text`, for a raw body."""
        for form in self._bytes:
            if form in data:
                data = data.replace(form, MASK.encode())
        return _cut_tail(data, self._key.encode(), MASK.encode())

    def headers(self, headers: httpx.Headers) -> httpx.Headers:
        """A copy of ``headers``: ``X-Api-Key`` and any value holding the key masked."""
        masked = [
            (name, MASK if name.lower() == _KEY_HEADER else self.text(value))
            for name, value in headers.multi_items()
        ]
        return httpx.Headers(masked)

    def response(self, response: httpx.Response) -> httpx.Response:
        """A read copy of ``response`` (and of its request) with the key masked out."""
        request: httpx.Request | None = getattr(response, "_request", None)
        copy_of_request = None
        if request is not None:
            copy_of_request = httpx.Request(
                request.method,
                httpx.URL(self.text(str(request.url))),
                headers=self.headers(request.headers),
            )
        content = self.raw(response.content)
        copy = httpx.Response(
            response.status_code,
            headers=self.headers(response.headers),
            stream=httpx.ByteStream(content),
            request=copy_of_request,
            extensions={
                name: value
                for name, value in response.extensions.items()
                if name in ("http_version", "reason_phrase")
            },
        )
        # Already read, as the original was: ``.content``/``.text`` need no await (and
        # a Content-Encoding header does not make httpx decode the decoded body again).
        copy._content = content
        return copy

    def error(self, error: PlatfoneError, response: httpx.Response | None) -> PlatfoneError:
        """``error`` (built from ``response``) made safe to keep and show; returns it.

        Its ``.response`` becomes a masked copy; every string it holds - message, body,
        salvaged fields - is masked; a chained cause that would print the key in a
        traceback is dropped.
        """
        if response is not None and isinstance(error, (APIError, ResponseDecodeError)):
            error.response = self.response(response)
        for name, value in vars(error).items():
            if isinstance(value, str):
                setattr(error, name, self.text(value))
        error.args = tuple(self.text(a) if isinstance(a, str) else a for a in error.args)
        cause = error.__cause__ or error.__context__
        if cause is not None and self._shows_key(cause):
            error.__cause__ = None
            error.__suppress_context__ = True
        return error

    def _shows_key(self, error: BaseException) -> bool:
        shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return self.text(shown) != shown


def _cut_tail(text: AnyStr, key: AnyStr, mask: AnyStr) -> AnyStr:
    """``text`` with a trailing prefix of ``key`` (a body cut mid-key) masked."""
    for length in range(min(len(key) - 1, len(text)), _MIN_PREFIX - 1, -1):
        if text.endswith(key[:length]):
            return text[:-length] + mask
    return text
