"""Tests of ``signup_flow.py`` on the emulator's pytest fixtures: no key, no network.

    pytest examples/test_signup_flow.py

Installing platfone-async registers the fixtures (``platfone_client``,
``platfone_emulator``, ``platfone_sync_client``); time is virtual, so the 5-minute wait
below takes milliseconds.
"""

from __future__ import annotations

import pytest
from signup_flow import verify_signup

from platfone_async import AsyncPlatfone
from platfone_async.testing import PlatfoneEmulator, SmsPolicy


@pytest.mark.anyio
async def test_the_code_that_came_is_returned_and_paid_for(
    platfone_client: AsyncPlatfone, platfone_emulator: PlatfoneEmulator
) -> None:
    """An SMS 40 s after the order: its code is returned, the number finalized and billed."""
    platfone_emulator.set_sms_policy(SmsPolicy(delay=40))
    code = await verify_signup(platfone_client, "telegram", "uk")
    [activation] = platfone_emulator.activations()
    assert activation["sms_code"] == code
    assert "finalized" == activation["activation_status"]
    assert activation["price"] == platfone_emulator.ledger()["amount_billed"]


@pytest.mark.anyio
async def test_no_sms_returns_none_and_costs_nothing(
    platfone_client: AsyncPlatfone, platfone_emulator: PlatfoneEmulator
) -> None:
    """No SMS in 5 minutes: None, the number cancelled, nothing billed."""
    assert await verify_signup(platfone_client, "telegram", "uk") is None
    [activation] = platfone_emulator.activations()
    assert "canceled" == activation["activation_status"]
    assert 0 == platfone_emulator.ledger()["billed"]
