"""Arbitrary JSON for each response type decodes to a model or raises ResponseDecodeError."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import platfone_async as pf
from platfone_async import (
    Activation,
    Balance,
    Country,
    PriceInfo,
    Report,
    ReportResult,
    SmsStatus,
    _convert,
)
from platfone_async._http import HTTPPipeline
from tests._support import ACTIVATION, HISTORY_ACTIVATION, PRICE, REPORT

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _mutations(example: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The example body with some fields replaced by arbitrary JSON or removed."""
    keys = sorted(example)
    return st.fixed_dictionaries(
        {},
        optional={key: st.just(example[key]) | JSON for key in keys},
    )


@pytest.fixture(scope="module")
def pipeline() -> Iterator[HTTPPipeline]:
    """The pipeline of a client that never sends (only its decoding is exercised)."""
    client = pf.AsyncPlatfone("k", base_url="http://x.test", rate_limits=None)
    yield client._http
    anyio.run(client.aclose)


TARGETS: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (Activation, _mutations(ACTIVATION) | _mutations(HISTORY_ACTIVATION) | JSON),
    (Balance, _mutations({"total": 1, "reserved": 0}) | JSON),
    (PriceInfo, _mutations(PRICE) | JSON),
    (Report, _mutations(REPORT) | JSON),
    (ReportResult, _mutations({"status": "accepted", "decline_id": None}) | JSON),
    (list[Country], st.lists(_mutations({"country_id": "uk", "name": "UK", "codes": []})) | JSON),
]


def _check(pipeline: HTTPPipeline, cl: Any, data: Any) -> None:
    response = httpx.Response(200, content=json.dumps(data).encode())
    with contextlib.suppress(pf.ResponseDecodeError, pf.APIError):
        pipeline.decode(response, cl)


@pytest.mark.parametrize(("cl", "strategy"), TARGETS, ids=lambda t: getattr(t, "__name__", ""))
def test_arbitrary_json_never_escapes_as_another_exception(
    pipeline: HTTPPipeline, cl: Any, strategy: st.SearchStrategy[Any]
) -> None:
    """Whatever the JSON, decoding gives a model or a typed error - never a KeyError & co."""

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def run(data: Any) -> None:
        _check(pipeline, cl, data)

    run()


def _structured(made: Any, cl: Any, data: Any) -> tuple[str, Any]:
    try:
        return "ok", made.structure(data, cl)
    except _convert._DECODE_ERRORS as exc:
        return "error", type(exc).__name__ if isinstance(exc, RecursionError) else None


@pytest.mark.parametrize(("cl", "strategy"), TARGETS, ids=lambda t: getattr(t, "__name__", ""))
def test_the_fast_converter_agrees_with_the_detailed_one(
    cl: Any, strategy: st.SearchStrategy[Any]
) -> None:
    """Answers are structured first without cattrs' error paths (twice as fast), and again
    with them only when that fails: the two accept the same bodies, into equal models."""

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def run(data: Any) -> None:
        fast, detailed = _convert.converter, _convert.detailed_converter()
        assert _structured(detailed, cl, data) == _structured(fast, cl, data)

    run()


def test_a_body_that_does_not_fit_names_the_field_though_the_fast_path_saw_it_first(
    pipeline: HTTPPipeline,
) -> None:
    """The error of a body the fast converter refused comes from the detailed one: its path."""
    body = dict(ACTIVATION, price="a lot", sms_status=["x"])
    response = httpx.Response(200, content=json.dumps(body).encode())
    with pytest.raises(pf.ResponseDecodeError) as caught:
        pipeline.decode(response, Activation)
    assert "$.price" == caught.value.path
    assert "expected int @ $.price" in str(caught.value)


@given(body=st.binary(max_size=64))
@settings(max_examples=100, deadline=None)
def test_arbitrary_bytes_are_a_decode_error_or_fit(pipeline: HTTPPipeline, body: bytes) -> None:
    """Arbitrary bytes as a body give a typed error, never another exception."""
    response = httpx.Response(200, content=body)
    with contextlib.suppress(pf.ResponseDecodeError, pf.APIError):
        pipeline.decode(response, Balance)


def test_unknown_status_kept_as_a_pseudo_member(
    pipeline: HTTPPipeline, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown status value is kept as a pseudo-member of its enum and logged once."""
    # Values no other test uses: "logged once" is per process, so a value seen by an
    # earlier test would not be logged here.
    sms, status = f"smsTeleported{uuid.uuid4().hex}", f"paused{uuid.uuid4().hex}"
    body = dict(ACTIVATION, sms_status=sms, activation_status=status)
    response = httpx.Response(200, content=json.dumps(body).encode())
    with caplog.at_level("INFO", logger="platfone_async"):
        first: Activation = pipeline.decode(response, Activation)
        pipeline.decode(response, Activation)
    assert sms == first.sms_status
    assert status == first.activation_status
    assert SmsStatus is type(first.sms_status)
    assert not first.sms_status.is_known
    assert 1 == sum(sms in r.getMessage() for r in caplog.records)


def test_extra_fields_ignored_and_nulls_accepted(pipeline: HTTPPipeline) -> None:
    """Unknown fields are ignored; null is accepted where the reference allows it."""
    body = dict(HISTORY_ACTIVATION, brand_new_field={"x": 1}, cancelable_after=None)
    response = httpx.Response(200, content=json.dumps(body).encode())
    activation: Activation = pipeline.decode(response, Activation)
    assert "6363" == activation.sms_code
    assert activation.cancelable_after is None


_EXAMPLES: list[dict[str, Any]] = [
    ACTIVATION,
    HISTORY_ACTIVATION,
    PRICE,
    REPORT,
    {"total": 1, "reserved": 0},
]


def _truncated() -> st.SearchStrategy[bytes]:
    """A real body cut off anywhere (a dropped connection, a broken proxy)."""
    bodies = [json.dumps(example).encode() for example in _EXAMPLES]
    return st.sampled_from(bodies).flatmap(
        lambda body: st.integers(0, len(body)).map(lambda end: body[:end])
    )


def _nested() -> st.SearchStrategy[bytes]:
    """Lists and objects nested from a little to far beyond the parser's recursion limit,
    closed or not, alone or in a field of a real body."""
    depth = st.integers(1, 3_000) | st.integers(3_000, 200_000)
    opening = st.sampled_from([b"[", b'{"a":'])
    closed = st.booleans()

    def build(depth: int, opening: bytes, closed: bool, field: bool) -> bytes:
        closing = b"]" if opening == b"[" else b"}"
        value = opening * depth + ((b"1" + closing * depth) if closed else b"")
        return b'{"activation_id": "a", "price": ' + value + b"}" if field else value

    return st.builds(build, depth, opening, closed, st.booleans())


def _mistyped() -> st.SearchStrategy[bytes]:
    """A real body with fields swapped for other JSON, or a few bytes flipped."""
    swapped = st.sampled_from(_EXAMPLES).flatmap(_mutations).map(lambda d: json.dumps(d).encode())
    flipped = st.tuples(
        st.sampled_from([json.dumps(example).encode() for example in _EXAMPLES]),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    ).map(_flip)
    return swapped | flipped


def _flip(case: tuple[bytes, list[tuple[int, int]]]) -> bytes:
    body, flips = bytearray(case[0]), case[1]
    for index, value in flips:
        body[index % len(body)] = value
    return bytes(body)


@pytest.mark.parametrize(
    "strategy", [_truncated(), _nested(), _mistyped()], ids=["truncated", "nested", "mistyped"]
)
@pytest.mark.parametrize("cl", [Activation, Balance, PriceInfo, Report, list[Country]], ids=str)
def test_broken_bodies_give_nothing_but_typed_errors(
    pipeline: HTTPPipeline, cl: Any, strategy: st.SearchStrategy[bytes]
) -> None:
    """Truncated, nested (even past the recursion limit) or mistyped bodies: a model or
    ResponseDecodeError (or the APIError a body names) - never RecursionError & co."""

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def run(body: bytes) -> None:
        response = httpx.Response(200, content=body)
        with contextlib.suppress(pf.ResponseDecodeError, pf.APIError):
            pipeline.decode(response, cl)

    run()
