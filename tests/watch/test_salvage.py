"""A code in answers that never decode is surfaced, not lost when the watch ends."""

from __future__ import annotations

import pytest

from platfone_async import ResponseDecodeError
from platfone_async.testing import Fault, Offer, PlatfoneEmulator, VirtualClock

pytestmark = pytest.mark.anyio


def _broken_answer(emulator: PlatfoneEmulator, activation_id: str) -> Fault:
    """The activation as the server holds it, with one field of the wrong type."""
    body = dict(emulator.activation(activation_id), price="not a number")
    return Fault(status=200, body=body)


async def test_code_in_undecodable_answers_is_raised_at_the_end() -> None:
    """Every poll after the SMS is undecodable: wait_for_sms raises the decode error with
    the code instead of reporting an activation that ended without one."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.9, 100)])
    async with clock.autojump(), emulator.client(rate_limits=None, max_retries=0) as client:
        activation = await client.create_activation("telegram", "uk")
        emulator.deliver_sms(activation.activation_id, "482913")
        emulator.inject_fault(
            "get_activation", _broken_answer(emulator, activation.activation_id), times=10_000
        )
        with pytest.raises(ResponseDecodeError) as caught:
            await client.wait_for_sms(activation, interval=10)
    assert "482913" == caught.value.sms_code
    assert activation.activation_id == caught.value.activation_id


async def test_a_decoded_answer_clears_the_salvaged_code() -> None:
    """When a later poll decodes, its state is the truth: the watch ends on it as usual."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.9, 100)])
    async with clock.autojump(), emulator.client(rate_limits=None, max_retries=0) as client:
        activation = await client.create_activation("telegram", "uk")
        emulator.deliver_sms(activation.activation_id, "482913")
        emulator.inject_fault(
            "get_activation", _broken_answer(emulator, activation.activation_id), times=3
        )
        state = await client.wait_for_sms(activation, interval=10)
    assert "482913" == state.sms_code
    assert 4 == emulator.request_count("get_activation")
