"""The emulator's newer controls in-process: server-side endings, hold and block, the
ledger, reset, and the faults' own checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from platfone_async import ActivationStatus, BillingStatus
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, SmsPolicy, VirtualClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def emulator() -> PlatfoneEmulator:
    emulator = PlatfoneEmulator(clock=VirtualClock(), rate_limits=None, success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 1_000)])
    return emulator


async def test_server_side_endings_move_the_money(emulator: PlatfoneEmulator) -> None:
    """Server-side expire/cancel release the price, finalize keeps the bill; bad ends refused."""
    async with emulator.client(rate_limits=None, max_retries=0) as client:
        expired, canceled, finalized = [
            await client.create_activation("telegram", "uk") for _ in range(3)
        ]
        emulator.deliver_sms(finalized.activation_id, "1")
        with pytest.raises(ValueError, match="has no billed SMS to finalize"):
            emulator.finalize(expired.activation_id)
        emulator.expire(expired.activation_id)
        emulator.cancel(canceled.activation_id)
        emulator.finalize(finalized.activation_id)
        with pytest.raises(ValueError, match="is expired, not active"):
            emulator.cancel(expired.activation_id)
        seen = [await client.get_activation(a) for a in (expired, canceled, finalized)]
    assert [
        (ActivationStatus.EXPIRED, BillingStatus.RELEASED),
        (ActivationStatus.CANCELED, BillingStatus.RELEASED),
        (ActivationStatus.FINALIZED, BillingStatus.BILLED),
    ] == [(a.activation_status, a.billing_status) for a in seen]
    assert seen[0].expire_at <= seen[0].updated_at
    assert {"total": 9_900, "reserved": 0, "available": 9_900} == emulator.balance()
    with pytest.raises(KeyError, match="no activation 'nope'"):
        emulator.expire("nope")


async def test_block_refuses_orders_until_unblocked(emulator: PlatfoneEmulator) -> None:
    """block() refuses orders (not reads), even with the rate check off, until unblock()."""
    order = {"service_id": "telegram", "country_id": "uk"}
    emulator.block(3_600)
    async with emulator.http_client(headers={"x-api-key": emulator.api_key}) as http:
        blocked = await http.post("/activation", json=order)
        balance = await http.get("/user/balance")
        emulator.unblock()
        ordered = await http.post("/activation", json=order)
    assert (429, "LowSuccessRateException") == (blocked.status_code, blocked.json()["errorName"])
    assert int(blocked.headers["x-ratelimit-reset"]) == blocked.json()["unblockAt"]
    assert (200, 200) == (balance.status_code, ordered.status_code)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        emulator.block(0)


async def test_reset_forgets_everything_but_accounts_and_settings(
    emulator: PlatfoneEmulator,
) -> None:
    """reset() forgets orders, requests, faults; keeps keys, opening balances, settings."""
    second = emulator.add_account("second-key", balance=500)
    emulator.max_active = 3
    emulator.set_sms_policy(SmsPolicy(delay=5))
    async with emulator.client(rate_limits=None, max_retries=0) as client:
        await client.create_activation("telegram", "uk")
    emulator.set_balance(1, api_key=second)
    emulator.set_on_hold(api_key=second)
    emulator.inject_fault("*", Fault(status=500), times=5)
    emulator.reset()
    assert (0, [], 3) == (emulator.orders_placed(), emulator.requests, emulator.max_active)
    assert 500 == emulator.balance(second)["total"]
    assert (False, 10_000) == (
        emulator.ledger(second)["on_hold"],
        emulator.ledger()["balance"]["total"],
    )
    assert PlatfoneEmulator().catalog.price_info("telegram", "uk") == (
        emulator.catalog.price_info("telegram", "uk")
    )
    async with emulator.client(rate_limits=None, max_retries=0) as client:
        activation = await client.create_activation("telegram", "uk")  # no fault left
        emulator.advance(5)
        assert (await client.get_activation(activation)).sms_received  # the policy stayed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"malformed": True, "truncated": True}, "malformed or truncated"),
        ({"status": 503, "reset_in": 30}, "reset_in"),
        ({"status": 429, "reset_in": -1}, "reset_in"),
    ],
)
def test_a_fault_that_cannot_be_is_refused(fields: dict[str, object], message: str) -> None:
    """A fault spoils the body one way; reset_in goes with a 429 and is not negative."""
    with pytest.raises(ValueError, match=message):
        Fault(**fields)  # type: ignore[arg-type]


def test_serve_refuses_a_webhook_url_without_its_secret() -> None:
    """--webhook-url alone is a usage error (status 2) before anything is bound."""
    command = [sys.executable, "-m", "platfone_async.testing", "serve", "--port", "0"]
    done = subprocess.run(
        [*command, "--webhook-url", "http://127.0.0.1:9/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (2, "error: --webhook-url and --webhook-secret go together\n") == (
        done.returncode,
        done.stderr,
    )
