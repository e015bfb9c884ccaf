"""The emulator as our users would test with it: whole flows in virtual time."""

from __future__ import annotations

import pytest

from platfone_async import ActivationEndedError
from platfone_async.testing import PlatfoneEmulator, SmsPolicy, VirtualClock


@pytest.mark.anyio
async def test_wait_for_sms_and_finalize_in_virtual_time() -> None:
    """Order, wait 40 virtual seconds for the automatic SMS, finalize: billed once."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock, sms_policy=SmsPolicy(delay=40))
    start = clock.time()
    async with clock.autojump(), emulator.client() as client:
        activation = await client.create_activation("telegram", "uk")
        received = await client.wait_for_sms(activation)
        await client.finalize_activation(received)
        balance = await client.get_balance()
    assert received.sms_code is not None
    assert 40 <= clock.time() - start < 60
    assert (10_000 - activation.price, 0) == (balance.total, balance.reserved)
    assert "finalized" == emulator.activation(activation.activation_id)["activation_status"]


@pytest.mark.anyio
async def test_an_sms_that_never_comes_ends_in_expiry() -> None:
    """With no SMS the wait ends at expire_at, 20 virtual minutes later, money released."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock, sms_policy=SmsPolicy(probability=0.0))
    async with clock.autojump(), emulator.client() as client:
        activation = await client.create_activation("telegram", "uk")
        with pytest.raises(ActivationEndedError) as caught:
            await client.wait_for_sms(activation, interval=60)
        balance = await client.get_balance()
    assert "expired" == caught.value.activation.activation_status
    assert (10_000, 0) == (balance.total, balance.reserved)
    assert 1 == emulator.orders_placed()
