"""Reports and pagination on the emulator: reasons by state, one report each, review, refund."""

from __future__ import annotations

import base64
import json

import pytest

from platfone_async import AsyncPlatfone, BadRequestError, ConflictError, NotFoundError
from platfone_async.testing import EmulatorEvent, Offer, PlatfoneEmulator, VirtualClock

PRICE = 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

pytestmark = pytest.mark.emulator(
    balance=1_000,
    success_rate_check=False,
    offers={
        ("telegram", "uk"): [Offer(PRICE, 0.8, 100)],
        ("telegram", "de"): [Offer(PRICE, 0.8, 100, retriable=False)],
    },
)


def client_of(emulator: PlatfoneEmulator) -> AsyncPlatfone:
    return emulator.client(rate_limits=None, max_retries=0)


async def reason_ids(client: AsyncPlatfone, aid: str) -> list[int]:
    return [r.reason_id for r in await client.get_report_reasons(aid)]


@pytest.mark.anyio
async def test_reasons_depend_on_the_activation_state(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """No SMS, SMS, waiting retry, cancelled and reported activations offer other reasons."""
    async with client_of(emulator) as client:
        waiting = (await client.create_activation("telegram", "uk")).activation_id
        got_sms = (await client.create_activation("telegram", "uk")).activation_id
        retrying = (await client.create_activation("telegram", "uk")).activation_id
        canceled = (await client.create_activation("telegram", "uk")).activation_id
        for aid in (got_sms, retrying):
            emulator.deliver_sms(aid, "1111")
        await client.retry_activation(retrying)
        clock.advance(120)
        await client.cancel_activation(canceled)
        assert [1, 3, 4, 7] == await reason_ids(client, waiting)
        assert [2, 4, 5, 6, 7] == await reason_ids(client, got_sms)
        assert [1, 2, 4, 5, 6, 7] == await reason_ids(client, retrying)
        assert [3, 4, 7] == await reason_ids(client, canceled)
        await client.create_report(got_sms, 6)
        assert [] == await reason_ids(client, got_sms)
        reasons = {r.reason_id: r for r in await client.get_report_reasons(waiting)}
    assert ("SMS is not coming", True) == (reasons[1].reason_name, reasons[1].evidence_required)


@pytest.mark.anyio
async def test_a_report_with_evidence_is_accepted_and_kept(
    emulator: PlatfoneEmulator,
) -> None:
    """multipart reason/message/evidence: accepted, inReview, with the state snapshot."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "de")
        emulator.deliver_sms(activation.activation_id, "1111")
        result = await client.create_report(
            activation, 5, message="blocked right after", evidence=PNG
        )
        report = await client.get_report(activation)
    stored = emulator.report(activation.activation_id)
    assert ("accepted", None) == (result.status, result.decline_id)
    assert (5, "Blocked after activation", "blocked right after") == (
        report.reason_id,
        report.reason_name,
        report.message,
    )
    assert "inReview" == report.activation.report_status
    assert report.activation_state_snapshot is not None
    assert "smsReceived" == json.loads(report.activation_state_snapshot)["sms_status"]
    assert stored is not None
    assert (PNG, "inReview") == (stored["evidence"], stored["status"])


@pytest.mark.anyio
async def test_one_report_per_activation(emulator: PlatfoneEmulator) -> None:
    """The second report on an activation is a 409 ReportAlreadyExistsException."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        await client.create_report(activation, 7, message="first")
        with pytest.raises(ConflictError) as caught:
            await client.create_report(activation, 7, message="second")
    assert "ReportAlreadyExistsException" == caught.value.error_name


@pytest.mark.anyio
async def test_report_inputs_are_checked(emulator: PlatfoneEmulator) -> None:
    """A reason the state does not offer, or missing required evidence, is a 400."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        with pytest.raises(BadRequestError, match="not available"):
            await client.create_report(activation, 2)
        with pytest.raises(BadRequestError, match="requires evidence"):
            await client.create_report(activation, 3)
        with pytest.raises(NotFoundError):
            await client.get_report(activation)
    assert emulator.report(activation.activation_id) is None


@pytest.mark.anyio
async def test_approval_refunds_a_billed_activation(emulator: PlatfoneEmulator) -> None:
    """approve_report: approved, billing refunded, the price back in the balance."""
    events: list[EmulatorEvent] = []
    emulator.add_listener(events.append)
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "de")
        emulator.deliver_sms(activation.activation_id, "1111")
        await client.create_report(activation, 2)
        assert 1_000 - PRICE == (await client.get_balance()).total
        emulator.approve_report(activation.activation_id)
        after = await client.get_activation(activation)
        balance = await client.get_balance()
    assert ("approved", "refunded") == (after.report_status, after.billing_status)
    assert (1_000, 0) == (balance.total, balance.reserved)
    assert ["activation.updated", "activation_report.updated"] == [e.type for e in events]
    assert "approved" == events[-1].data["report_status"]


@pytest.mark.anyio
async def test_a_declined_report_refunds_nothing(emulator: PlatfoneEmulator) -> None:
    """decline_report: declined with its decline_id, billing stays billed."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        emulator.deliver_sms(activation.activation_id, "1111")
        await client.create_report(activation, 4, evidence=PNG)
        emulator.decline_report(activation.activation_id, decline_id=2)
        after = await client.get_activation(activation)
        balance = await client.get_balance()
    stored = emulator.report(activation.activation_id)
    assert stored is not None
    assert ("declined", 2) == (stored["status"], stored["decline_id"])
    assert ("declined", "billed") == (after.report_status, after.billing_status)
    assert 1_000 - PRICE == balance.total
    with pytest.raises(ValueError, match="not inReview"):
        emulator.approve_report(activation.activation_id)


@pytest.mark.anyio
async def test_self_help_cases_are_declined_at_once(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """'Wrong SMS' on a retriable number: decline 2; 'not coming' once cancelable: 1."""
    async with client_of(emulator) as client:
        wrong = await client.create_activation("telegram", "uk")
        silent = await client.create_activation("telegram", "uk")
        emulator.deliver_sms(wrong.activation_id, "1111")
        retry_it = await client.create_report(wrong, 2)
        clock.advance(120)
        other_number = await client.create_report(silent, 1, evidence=PNG)
        after = await client.get_activation(silent)
    assert ("declined", 2) == (retry_it.status, retry_it.decline_id)
    assert ("declined", 1) == (other_number.status, other_number.decline_id)
    assert "declined" == after.report_status


@pytest.mark.anyio
async def test_a_json_report_is_accepted_too(emulator: PlatfoneEmulator) -> None:
    """The reference's curl sends JSON (evidence as base64): the emulator takes it."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
    body = {
        "reason_id": 4,
        "message": "2FA enabled here",
        "evidence": base64.b64encode(PNG).decode(),
    }
    async with emulator.http_client(headers={"X-Api-Key": emulator.api_key}) as http:
        response = await http.post(f"/activation/{activation.activation_id}/report", json=body)
    stored = emulator.report(activation.activation_id)
    assert (200, {"status": "accepted", "decline_id": None}) == (
        response.status_code,
        response.json(),
    )
    assert stored is not None
    assert PNG == stored["evidence"]


@pytest.mark.anyio
async def test_reports_are_paginated_newest_first(emulator: PlatfoneEmulator) -> None:
    """get_reports pages by limit; iter_reports walks them all once."""
    async with client_of(emulator) as client:
        ids = []
        for _ in range(3):
            activation = await client.create_activation("telegram", "uk")
            await client.create_report(activation, 7)
            ids.append(activation.activation_id)
        first = await client.get_reports(page=1, limit=2)
        second = await client.get_reports(page=2, limit=2)
        walked = [r.activation.activation_id async for r in client.iter_reports(limit=2)]
    assert (1, 2, 2, 3) == (first.page, first.limit, first.pages, first.total)
    assert ids[::-1] == [r.activation.activation_id for r in first.items + second.items]
    assert ids[::-1] == walked


@pytest.mark.anyio
async def test_history_is_paginated_newest_first(emulator: PlatfoneEmulator) -> None:
    """get_activation_history: total, pages and pages' contents; limit is 1..50."""
    async with client_of(emulator) as client:
        ids = [(await client.create_activation("telegram", "uk")).activation_id for _ in range(5)]
        last = await client.get_activation_history(page=3, limit=2)
        beyond = await client.get_activation_history(page=4, limit=2)
        walked = [a.activation_id async for a in client.iter_activation_history(limit=2)]
    assert (3, 2, 3, 5) == (last.page, last.limit, last.pages, last.total)
    assert [ids[0]] == [a.activation_id for a in last.items]
    assert [] == beyond.items
    assert ids[::-1] == walked
    async with emulator.http_client(headers={"X-Api-Key": emulator.api_key}) as http:
        too_big = await http.get("/activation/history", params={"limit": 51})
        zero = await http.get("/activation/reports", params={"page": 0})
    assert (400, 400) == (too_big.status_code, zero.status_code)


@pytest.mark.anyio
async def test_a_report_names_where_its_evidence_is_served(emulator: PlatfoneEmulator) -> None:
    """A report with evidence gives ``evidence_url``, where the uploaded bytes are served as
    sent; one without has none, and its ``message`` is a string even when none was sent."""
    async with client_of(emulator) as client:
        shown = await client.create_activation("telegram", "de")
        emulator.deliver_sms(shown.activation_id, "1111")
        await client.create_report(shown, 5, evidence=PNG)
        plain = await client.create_activation("telegram", "uk")
        await client.create_report(plain, 7)
        with_evidence = await client.get_report(shown)
        without = await client.get_report(plain)
    assert with_evidence.evidence_url is not None
    assert (None, "") == (without.evidence_url, without.message)
    async with emulator.http_client() as http:
        served = await http.get(with_evidence.evidence_url)
        missing = await http.get(with_evidence.evidence_url.replace(shown.activation_id, "nope"))
    assert (200, PNG) == (served.status_code, served.content)
    assert 404 == missing.status_code


@pytest.mark.anyio
async def test_history_can_leave_out_active_activations(emulator: PlatfoneEmulator) -> None:
    """``exclude_active=true`` (as Platfone's web app sends it) leaves out what is still
    active; ``false`` or nothing lists everything; anything else is a 400."""
    async with client_of(emulator) as client:
        done = await client.create_activation("telegram", "uk")
        emulator.deliver_sms(done.activation_id, "1111")
        await client.finalize_activation(done.activation_id)
        open_ = await client.create_activation("telegram", "uk")
    async with emulator.http_client(headers={"X-Api-Key": emulator.api_key}) as http:
        pages = {
            flag: (await http.get("/activation/history", params=params)).json()
            for flag, params in (
                ("true", {"exclude_active": "true"}),
                ("false", {"exclude_active": "false"}),
                ("absent", {}),
            )
        }
        wrong = await http.get("/activation/history", params={"exclude_active": "maybe"})
    ids = {flag: [a["activation_id"] for a in page["activations"]] for flag, page in pages.items()}
    assert [done.activation_id] == ids["true"]
    assert 1 == pages["true"]["total"]
    assert [open_.activation_id, done.activation_id] == ids["false"] == ids["absent"]
    assert 400 == wrong.status_code
