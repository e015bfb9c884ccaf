"""Webhook signatures (verify) and payloads (parse_event), without a network."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from platfone_async import (
    Activation,
    InvalidParameterError,
    ReportStatus,
    SmsStatus,
    WebhookEventType,
    WebhookPayloadError,
    WebhookVerificationError,
)
from platfone_async.webhooks import (
    AccountLowBalance,
    ActivationReportUpdated,
    ActivationUpdated,
    AlternativeActivationUpdated,
    LowBalance,
    UnknownWebhookEvent,
    parse_event,
    sign,
    signed_headers,
    signing_string,
    verify,
)
from tests._support import HISTORY_ACTIVATION

SECRET = "whsec-test-0123456789"
NOW = 1_767_225_600
WEBHOOK_ID = "msg_2a9c"


def payload(type: str = "activation.updated", data: Any = None) -> bytes:
    """A webhook body as the reference shows it (pretty-printed, as a sender might)."""
    document = {
        "id": "abcd1234",
        "api_version": "1.0",
        "type": type,
        "data": HISTORY_ACTIVATION if data is None else data,
    }
    return json.dumps(document, indent=2).encode()


BODY = payload()


def headers_for(body: bytes = BODY, secret: str = SECRET, timestamp: int = NOW) -> dict[str, str]:
    return signed_headers(body, secret, webhook_id=WEBHOOK_ID, timestamp=timestamp)


def reason(body: bytes, headers: Mapping[str, str], **kwargs: Any) -> str:
    """The message of the WebhookVerificationError that verify raises."""
    kwargs.setdefault("now", NOW)
    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, headers, kwargs.pop("secret", SECRET), **kwargs)
    return str(caught.value)


def test_valid_signature_passes() -> None:
    """A body signed with the secret, now, verifies."""
    verify(BODY, headers_for(), SECRET, now=NOW)


def test_signing_string_is_id_timestamp_and_raw_body() -> None:
    """The signed string is "{x-webhook-id}.{x-timestamp}.{raw body}", HMAC-SHA256."""
    expected = hmac.new(SECRET.encode(), b"msg_2a9c.1767225600." + BODY, hashlib.sha256)
    assert b"msg_2a9c.1767225600." + BODY == signing_string(WEBHOOK_ID, str(NOW), BODY)
    assert expected.hexdigest() == headers_for()["x-signature"]


def test_headers_are_case_insensitive() -> None:
    """X-Webhook-Id, X-TIMESTAMP and friends are found whatever their case."""
    shouted = {name.upper(): value for name, value in headers_for().items()}
    titled = {name.title(): value for name, value in headers_for().items()}
    verify(BODY, shouted, SECRET, now=NOW)
    verify(BODY, titled, SECRET, now=NOW)


def test_tampered_body_fails() -> None:
    """One byte changed in the body: no signature matches."""
    tampered = BODY.replace(b"6363", b"6364")
    assert "no signature in x-signature matches the body" == reason(tampered, headers_for())


def test_tampered_id_or_timestamp_fails() -> None:
    """The id and timestamp are signed too: changing either breaks the signature."""
    other_id = {**headers_for(), "x-webhook-id": "msg_other"}
    other_time = {**headers_for(), "x-timestamp": str(NOW + 1)}
    assert "no signature" in reason(BODY, other_id)
    assert "no signature" in reason(BODY, other_time)


def test_wrong_secret_fails() -> None:
    """Signed with another secret: no signature matches."""
    assert "no signature in x-signature matches the body" == reason(
        BODY, headers_for(secret="someone-else")
    )


def test_reserialized_json_fails() -> None:
    """JSON parsed and dumped again (other spacing) no longer matches its signature."""
    reserialized = json.dumps(json.loads(BODY)).encode()
    assert json.loads(BODY) == json.loads(reserialized)
    assert "no signature" in reason(reserialized, headers_for())


def test_text_body_is_refused() -> None:
    """The body must be the raw bytes; a str is a TypeError that says why."""
    with pytest.raises(TypeError, match="raw bytes"):
        verify(BODY.decode(), headers_for(), SECRET, now=NOW)  # type: ignore[arg-type]


def test_old_timestamp_fails() -> None:
    """A delivery signed 301 s ago is too old for the default 300 s tolerance."""
    message = reason(BODY, headers_for(timestamp=NOW - 301))
    assert message.startswith("the x-timestamp is too old: 301 s ago")


def test_future_timestamp_fails() -> None:
    """A delivery signed 301 s in the future is too new."""
    message = reason(BODY, headers_for(timestamp=NOW + 301))
    assert message.startswith("the x-timestamp is too new: 301 s in the future")


def test_timestamp_within_tolerance_passes_both_ways() -> None:
    """300 s either way is still within the default tolerance; tolerance is adjustable."""
    verify(BODY, headers_for(timestamp=NOW - 300), SECRET, now=NOW)
    verify(BODY, headers_for(timestamp=NOW + 300), SECRET, now=NOW)
    assert "too old" in reason(BODY, headers_for(timestamp=NOW - 60), tolerance=30)


@pytest.mark.parametrize("missing", ["x-webhook-id", "x-timestamp", "x-signature"])
def test_missing_header_fails_naming_it(missing: str) -> None:
    """Each of the three headers is required; the message names the missing one."""
    headers = {name: value for name, value in headers_for().items() if name != missing}
    assert f"the {missing} header is missing" == reason(BODY, headers)


@pytest.mark.parametrize("stamp", ["soon", "-5", "1e9", "", "1767225600x"])
def test_malformed_timestamp_fails(stamp: str) -> None:
    """A timestamp that is not Unix seconds fails before any signature is checked."""
    headers = {**headers_for(), "x-timestamp": stamp}
    expected = (
        "the x-timestamp header is missing"
        if not stamp
        else "the x-timestamp header is not a Unix time in seconds"
    )
    assert expected == reason(BODY, headers)


def test_hex_base64_and_v1_prefix_all_pass() -> None:
    """Hex (any case), base64 (standard or URL-safe), with or without "v1," verify."""
    hex_sig = sign(BODY, SECRET, webhook_id=WEBHOOK_ID, timestamp=NOW)
    b64_sig = sign(BODY, SECRET, webhook_id=WEBHOOK_ID, timestamp=NOW, encoding="base64")
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(b64_sig)).decode().rstrip("=")
    for signature in (hex_sig, hex_sig.upper(), b64_sig, urlsafe, f"v1,{hex_sig}", f"v1,{b64_sig}"):
        headers = {**headers_for(), "x-signature": signature}
        verify(BODY, headers, SECRET, now=NOW)


def _encoded(digest: bytes, encoding: str) -> str:
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def _true_digest(secret: str = SECRET) -> bytes:
    message = signing_string(WEBHOOK_ID, str(NOW), BODY)
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_a_signature_wrong_in_any_one_byte_fails(encoding: str) -> None:
    """Changing any single one of the 32 bytes of the signature - first, middle, last -
    makes it fail, alone, with "v1,", or beside another secret's valid signature."""
    good = _true_digest()
    other = _encoded(_true_digest("another-secret"), encoding)
    verify(BODY, {**headers_for(), "x-signature": _encoded(good, encoding)}, SECRET, now=NOW)
    for position in range(len(good)):
        for flip in (0x01, 0x80):
            bad = bytearray(good)
            bad[position] ^= flip
            text = _encoded(bytes(bad), encoding)
            for header in (text, f"v1,{text}", f"v1,{other} v1,{text}", f"{text} {other}"):
                assert "no signature" in reason(BODY, {**headers_for(), "x-signature": header})


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every offered signature is compared through ``hmac.compare_digest`` (constant
    time, whole digests), never with ``==``: each pair goes through it, even after a match."""
    compared: list[tuple[bytes, bytes]] = []
    constant_time = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((bytes(a), bytes(b)))
        return constant_time(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    good, other = _true_digest(), _true_digest("another-secret")
    headers = {**headers_for(), "x-signature": f"v1,{good.hex()} v1,{other.hex()}"}
    verify(BODY, headers, SECRET, now=NOW)
    assert [(good, good), (good, other)] == compared


def test_sign_and_signed_headers_encode_as_asked() -> None:
    """sign() and signed_headers() give the HMAC in hex by default, in base64 when asked."""
    digest = _true_digest()
    hex_sig = sign(BODY, SECRET, webhook_id=WEBHOOK_ID, timestamp=NOW)
    b64_sig = sign(BODY, SECRET, webhook_id=WEBHOOK_ID, timestamp=NOW, encoding="base64")
    headers = signed_headers(BODY, SECRET, webhook_id=WEBHOOK_ID, timestamp=NOW, encoding="base64")
    assert (digest.hex(), base64.b64encode(digest).decode()) == (hex_sig, b64_sig)
    assert b64_sig == headers["x-signature"]


def test_url_safe_base64_with_both_of_its_own_characters_passes() -> None:
    """URL-safe base64 uses "-" and "_" for "+" and "/": a signature holding both still
    verifies (its body is chosen so that it does)."""
    for n in range(1_000):
        body = payload(data=dict(HISTORY_ACTIVATION, sms_code=str(n)))
        message = signing_string(WEBHOOK_ID, str(NOW), body)
        digest = hmac.new(SECRET.encode(), message, hashlib.sha256).digest()
        urlsafe = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if "-" in urlsafe and "_" in urlsafe:
            break
    else:
        raise AssertionError("no body in 1,000 gives a signature with both - and _")
    verify(body, {**headers_for(body), "x-signature": urlsafe}, SECRET, now=NOW)


def test_a_base64_signature_with_a_stray_character_fails() -> None:
    """A token is read as it is: characters that are not base64 are not skipped over."""
    b64 = _encoded(_true_digest(), "base64")
    for stray in ("!", "*", "."):
        token = b64[:10] + stray + b64[10:]
        assert "no signature" in reason(BODY, {**headers_for(), "x-signature": token})


def test_a_token_of_another_version_does_not_hide_the_next_one() -> None:
    """Tokens of other versions are skipped, and the valid v1 token after them counts."""
    good = headers_for()["x-signature"]
    verify(BODY, {**headers_for(), "x-signature": f"v1a,abc v2,{good} v1,{good}"}, SECRET, now=NOW)


def test_without_now_the_timestamp_is_judged_against_the_wall_clock() -> None:
    """now= defaults to time.time(): a delivery stamped now passes, one from 2026's first
    day (NOW) is long too old."""
    stamp = int(time.time())
    verify(BODY, headers_for(timestamp=stamp), SECRET)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(BODY, headers_for(), SECRET)


def test_other_signature_versions_are_not_checked() -> None:
    """A "v2," or "v1a," token is not an HMAC of ours, even if its digest would match."""
    hex_sig = sign(BODY, SECRET, webhook_id=WEBHOOK_ID, timestamp=NOW)
    for signature in (f"v2,{hex_sig}", f"v1a,{hex_sig}"):
        assert "no signature" in reason(BODY, {**headers_for(), "x-signature": signature})


def test_rotated_secrets_several_signatures() -> None:
    """During a key rotation the header carries several signatures; any one matching passes."""
    old = sign(BODY, "old-secret", webhook_id=WEBHOOK_ID, timestamp=NOW)
    new = sign(BODY, "new-secret", webhook_id=WEBHOOK_ID, timestamp=NOW, encoding="base64")
    headers = {**headers_for(), "x-signature": f"v1,{old} v1,{new}"}
    verify(BODY, headers, "old-secret", now=NOW)
    verify(BODY, headers, "new-secret", now=NOW)
    assert "no signature" in reason(BODY, headers, secret="third-secret")


def test_receiver_with_several_secrets() -> None:
    """A receiver rotating its own secret accepts either while both are configured."""
    headers = headers_for(secret="new-secret")
    verify(BODY, headers, ["old-secret", "new-secret"], now=NOW)


def test_garbage_signature_tokens_are_ignored() -> None:
    """Tokens that are neither hex nor base64 of 32 bytes are skipped, not fatal."""
    good = headers_for()["x-signature"]
    headers = {**headers_for(), "x-signature": f"nonsense v1,%%% {good[:10]} {good}"}
    verify(BODY, headers, SECRET, now=NOW)


def test_errors_never_show_the_secret_or_signature() -> None:
    """A failed check says which check, never the secret or the expected signature."""
    expected_sig = sign(
        BODY.replace(b"6363", b"0000"), SECRET, webhook_id=WEBHOOK_ID, timestamp=NOW
    )
    message = reason(BODY.replace(b"6363", b"0000"), headers_for())
    assert SECRET not in message
    assert expected_sig not in message
    assert headers_for()["x-signature"] not in message


@pytest.mark.parametrize(
    ("secret", "rule"),
    [
        ("", "must not be empty"),
        ([], "give at least one webhook secret"),
        ([""], "must not be empty"),
        ([SECRET, ""], "must not be empty"),
        ([SECRET.encode()], "must be a str"),
        ([SECRET, 42], "must be a str"),
    ],
)
def test_a_missing_empty_or_non_text_secret_is_refused(secret: Any, rule: str) -> None:
    """An empty secret would verify forgeries, and bytes or a number are a mistake: each
    is an InvalidParameterError naming the secret and the rule, before any check."""
    with pytest.raises(InvalidParameterError) as caught:
        verify(BODY, headers_for(), secret, now=NOW)
    assert ("secret", rule) == (caught.value.parameter, caught.value.rule)


@pytest.mark.parametrize("tolerance", [-1, float("nan"), float("inf"), True, "300", None])
def test_a_tolerance_that_is_not_seconds_is_refused(tolerance: Any) -> None:
    """tolerance must be a finite number of seconds >= 0 (not a bool, text or None)."""
    with pytest.raises(InvalidParameterError) as caught:
        verify(BODY, headers_for(), SECRET, tolerance=tolerance, now=NOW)
    not_a_number = isinstance(tolerance, (bool, str)) or tolerance is None
    rule = "must be a number of seconds" if not_a_number else "must be finite and >= 0"
    assert ("tolerance", rule) == (caught.value.parameter, caught.value.rule)


def test_a_zero_tolerance_accepts_only_the_current_second() -> None:
    """tolerance=0: a delivery stamped now passes, one a second off either way does not."""
    verify(BODY, headers_for(), SECRET, tolerance=0, now=NOW)
    assert "too old" in reason(BODY, headers_for(timestamp=NOW - 1), tolerance=0)
    assert "too new" in reason(BODY, headers_for(timestamp=NOW + 1), tolerance=0)


# -- parse_event ----------------------------------------------------------------------


def test_activation_updated_carries_an_activation() -> None:
    """activation.updated: .data is the Activation, typed like get_activation's."""
    event = parse_event(BODY)
    assert isinstance(event, ActivationUpdated)
    assert ("abcd1234", "1.0") == (event.id, event.api_version)
    assert WebhookEventType.ACTIVATION_UPDATED == event.type
    assert isinstance(event.data, Activation)
    assert ("63f4d0dab040a865d80da08a", "6363") == (event.data.activation_id, event.data.sms_code)
    assert SmsStatus.SMS_REQUESTED == event.data.sms_status
    assert HISTORY_ACTIVATION == event.raw["data"]


def test_alternative_activation_updated() -> None:
    """alternative.activation.updated also carries an Activation."""
    event = parse_event(payload("alternative.activation.updated"))
    assert isinstance(event, AlternativeActivationUpdated)
    assert "63f4d0dab040a865d80da08a" == event.data.activation_id


def test_report_updated_as_the_reference_shows_it() -> None:
    """activation_report.updated with an activation as data: its report_status and id."""
    data = {**HISTORY_ACTIVATION, "report_status": "approved"}
    event = parse_event(payload("activation_report.updated", data))
    assert isinstance(event, ActivationReportUpdated)
    assert ReportStatus.APPROVED == event.data.report_status
    assert "63f4d0dab040a865d80da08a" == event.data.activation_id
    assert event.data.activation is not None
    assert "6363" == event.data.activation.sms_code


def test_report_updated_with_a_nested_activation() -> None:
    """The emulator's shape: report fields, and the activation nested under "activation"."""
    data = {
        "activation_id": "63f4d0dab040a865d80da08a",
        "report_status": "declined",
        "decline_id": 2,
        "activation": {**HISTORY_ACTIVATION, "report_status": "declined"},
    }
    event = parse_event(payload("activation_report.updated", data))
    assert isinstance(event, ActivationReportUpdated)
    assert (ReportStatus.DECLINED, 2) == (event.data.report_status, event.data.decline_id)
    assert event.data.activation is not None


def test_report_updated_minimal() -> None:
    """Just an id and a status is enough; an unknown status is kept as a string."""
    data = {"activation_id": "a1", "report_status": "escalated"}
    event = parse_event(payload("activation_report.updated", data))
    assert isinstance(event, ActivationReportUpdated)
    assert ("a1", "escalated", None) == (
        event.data.activation_id,
        event.data.report_status,
        event.data.activation,
    )


def test_low_balance_reads_balance() -> None:
    """account.low_balance: .data.balance in cents (the reference's example, extra fields)."""
    event = parse_event(payload("account.low_balance", {**HISTORY_ACTIVATION, "balance": 2301}))
    assert isinstance(event, AccountLowBalance)
    assert LowBalance(balance=2301) == event.data


def test_low_balance_from_total_and_reserved() -> None:
    """Without "balance", total - reserved stands in for it."""
    event = parse_event(payload("account.low_balance", {"total": 150, "reserved": 100}))
    assert LowBalance(balance=50, total=150, reserved=100) == event.data


def test_unknown_event_type_is_kept() -> None:
    """A type the SDK does not know is an UnknownWebhookEvent with the raw data."""
    event = parse_event(payload("number.ported", {"anything": [1, 2]}))
    assert isinstance(event, UnknownWebhookEvent)
    assert ("number.ported", {"anything": [1, 2]}) == (event.type, event.data)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b"{not json", "$"),
        (b"\xff\xfe", "$"),
        (b"[1, 2]", "$"),
        (b'{"type": "activation.updated", "data": {}}', "$.id"),
        (b'{"id": "e1", "data": {}}', "$.type"),
        (b'{"id": "e1", "type": "activation.updated", "data": {"activation_id": "a"}}', None),
        (b'{"id": "e1", "type": "activation.updated", "data": []}', "$.data"),
        (b'{"id": "e1", "type": "account.low_balance", "data": {"total": 5}}', "$.data.balance"),
    ],
)
def test_malformed_payload_is_a_payload_error(body: bytes, path: str | None) -> None:
    """Not JSON, no id/type, or data that does not fit: WebhookPayloadError with a path."""
    with pytest.raises(WebhookPayloadError) as caught:
        parse_event(body)
    assert isinstance(caught.value, ValueError)
    if path is not None:
        assert path == caught.value.path
    else:
        assert (caught.value.path or "").startswith("$.data.")


def test_bad_data_path_points_into_data() -> None:
    """The path of a field that does not fit is rooted at $.data."""
    data = {**HISTORY_ACTIVATION, "expire_at": "tomorrow"}
    with pytest.raises(WebhookPayloadError) as caught:
        parse_event(payload(data=data))
    assert "$.data.expire_at" == caught.value.path
    assert "at $.data.expire_at" in str(caught.value)


class _MultiDict(Mapping[str, str]):
    """Headers as a framework's multi-dict holds them: ``items()`` repeats a name."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def __getitem__(self, name: str) -> str:
        return next(v for k, v in self._items if k.lower() == name.lower())

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> Any:
        return list(self._items)


@pytest.mark.parametrize("good_first", [True, False], ids=["good-first", "good-last"])
def test_every_one_of_repeated_signature_headers_is_tried(good_first: bool) -> None:
    """Two x-signature lines (a stale one appended, or prepended): the valid one passes,
    whether the lines come as a multi-dict's items or folded by httpx with a comma."""
    good = headers_for()
    stale = ("x-signature", "v1," + "ab" * 32)
    lines = [(name, value) for name, value in good.items()]
    lines = [*lines, stale] if good_first else [stale, *lines]
    verify(BODY, _MultiDict(lines), SECRET, now=NOW)
    verify(BODY, httpx.Headers(lines), SECRET, now=NOW)
    bare = [(n, v.removeprefix("v1,")) for n, v in lines]
    verify(BODY, httpx.Headers(bare), SECRET, now=NOW)
    only_stale = [line for line in lines if line[0] != "x-signature"] + [stale, stale]
    assert "no signature" in reason(BODY, _MultiDict(only_stale))
