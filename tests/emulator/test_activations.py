"""The emulator's activation state machine and billing, driven through AsyncPlatfone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from platfone_async import (
    Activation,
    AsyncPlatfone,
    ConflictError,
    NotFoundError,
)
from platfone_async.testing import Offer, PlatfoneEmulator, VirtualClock

PRICE = 100
LIFETIME = 1200
CANCEL_AFTER = 120

pytestmark = pytest.mark.emulator(
    balance=1_000,
    offers={
        ("telegram", "uk"): [Offer(PRICE, 0.8, 50)],
        ("telegram", "de"): [Offer(PRICE, 0.8, 50, retriable=False)],
        ("whatsapp", "uk"): [Offer(PRICE, 0.8, 50, cancel_after=None)],
    },
)


def client_of(emulator: PlatfoneEmulator, api_key: str | None = None) -> AsyncPlatfone:
    return emulator.client(api_key, rate_limits=None, max_retries=0)


async def order(client: AsyncPlatfone, service: str = "telegram", country: str = "uk") -> str:
    return (await client.create_activation(service, country)).activation_id


async def state(client: AsyncPlatfone, aid: str) -> tuple[str, str, str]:
    a = await client.get_activation(aid)
    return str(a.sms_status), str(a.activation_status), str(a.billing_status)


@pytest.mark.anyio
async def test_order_reserves_the_price(emulator: PlatfoneEmulator, clock: VirtualClock) -> None:
    """An order starts smsRequested/active/reserved and moves its price to reserved."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk")
        balance = await client.get_balance()
    assert ("smsRequested", "active", "reserved") == (
        activation.sms_status,
        activation.activation_status,
        activation.billing_status,
    )
    created = int(clock.time())
    assert created == int(activation.created_at.timestamp())
    assert created + LIFETIME == int(activation.expire_at.timestamp())
    assert activation.cancelable_after is not None
    assert created + CANCEL_AFTER == int(activation.cancelable_after.timestamp())
    assert (None, None, None) == (
        activation.sms_code,
        activation.sms_text,
        activation.report_status,
    )
    assert (1_000, PRICE) == (balance.total, balance.reserved)
    assert 49 == emulator.catalog.offers("telegram", "uk")[0].count


@pytest.mark.anyio
async def test_first_sms_bills_the_reservation(emulator: PlatfoneEmulator) -> None:
    """The first SMS turns reserved money into billed money and shows code and text."""
    async with client_of(emulator) as client:
        aid = await order(client)
        assert emulator.deliver_sms(aid, "123456", "Your code is 123456")
        activation = await client.get_activation(aid)
        balance = await client.get_balance()
    assert ("smsReceived", "billed") == (activation.sms_status, activation.billing_status)
    assert ("123456", "Your code is 123456") == (activation.sms_code, activation.sms_text)
    assert (1_000 - PRICE, 0) == (balance.total, balance.reserved)


@pytest.mark.anyio
async def test_finalize_frees_the_number_and_keeps_the_bill(emulator: PlatfoneEmulator) -> None:
    """Finalize after the SMS: finalized, still billed once, nothing reserved."""
    async with client_of(emulator) as client:
        aid = await order(client)
        emulator.deliver_sms(aid, "1111")
        await client.finalize_activation(aid)
        assert ("smsReceived", "finalized", "billed") == await state(client, aid)
        balance = await client.get_balance()
    assert (1_000 - PRICE, 0) == (balance.total, balance.reserved)


@pytest.mark.anyio
async def test_retry_cycle_overwrites_the_sms_and_bills_once(emulator: PlatfoneEmulator) -> None:
    """retry -> retryRequested (old SMS kept) -> retryReceived (new SMS), billed once."""
    async with client_of(emulator) as client:
        aid = await order(client)
        emulator.deliver_sms(aid, "1111")
        await client.retry_activation(aid)
        waiting = await client.get_activation(aid)
        assert ("retryRequested", "1111") == (waiting.sms_status, waiting.sms_code)
        emulator.deliver_sms(aid, "2222")
        second = await client.get_activation(aid)
        assert ("retryReceived", "2222", "billed") == (
            second.sms_status,
            second.sms_code,
            second.billing_status,
        )
        await client.retry_activation(aid)  # allowed again from retryReceived
        await client.finalize_activation(aid)  # and finalize while a retry waits
        assert ("retryRequested", "finalized", "billed") == await state(client, aid)
        balance = await client.get_balance()
    assert (1_000 - PRICE, 0) == (balance.total, balance.reserved)


@pytest.mark.anyio
async def test_cancel_releases_the_reservation(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Cancel once cancelable_after has passed: canceled, released, money back."""
    async with client_of(emulator) as client:
        aid = await order(client)
        clock.advance(CANCEL_AFTER)
        await client.cancel_activation(aid)
        assert ("smsRequested", "canceled", "released") == await state(client, aid)
        balance = await client.get_balance()
    assert (1_000, 0) == (balance.total, balance.reserved)


@pytest.mark.anyio
async def test_cancel_before_cancelable_after_is_refused(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """One second before cancelable_after, cancel fails naming that precondition."""
    async with client_of(emulator) as client:
        aid = await order(client)
        clock.advance(CANCEL_AFTER - 1)
        with pytest.raises(ConflictError) as caught:
            await client.cancel_activation(aid)
        assert ("smsRequested", "active", "reserved") == await state(client, aid)
    assert (409, "ActivationStateException") == (caught.value.status_code, caught.value.error_name)
    assert "cancelable_after" in caught.value.message


@pytest.mark.anyio
async def test_cancel_is_refused_when_cancelable_after_is_null(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """An activation whose cancelable_after is null can never be cancelled."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("whatsapp", "uk")
        clock.advance(LIFETIME - 1)
        with pytest.raises(ConflictError) as caught:
            await client.cancel_activation(activation)
    assert activation.cancelable_after is None
    assert "cancelable_after is null" in caught.value.message


async def _setup(
    name: str, emulator: PlatfoneEmulator, client: AsyncPlatfone, clock: VirtualClock
) -> str:
    """Bring a fresh retriable activation to a named state (cancelable_after passed)."""
    aid = await order(client)
    clock.advance(CANCEL_AFTER)
    if name in ("smsReceived", "retryRequested", "retryReceived", "finalized", "expired_billed"):
        emulator.deliver_sms(aid, "1111")
    if name in ("retryRequested", "retryReceived"):
        await client.retry_activation(aid)
    if name == "retryReceived":
        emulator.deliver_sms(aid, "2222")
    if name == "finalized":
        await client.finalize_activation(aid)
    if name == "canceled":
        await client.cancel_activation(aid)
    if name.startswith("expired"):
        clock.advance(LIFETIME)
    return aid


STATES = [
    "smsRequested",
    "smsReceived",
    "retryRequested",
    "retryReceived",
    "finalized",
    "canceled",
    "expired_unbilled",
    "expired_billed",
]
ALLOWED = {
    "retry": {"smsReceived", "retryReceived"},
    "cancel": {"smsRequested"},
    "finalize": {"smsReceived", "retryRequested", "retryReceived"},
}
ACTIONS: dict[str, Callable[[AsyncPlatfone, str], Awaitable[None]]] = {
    "retry": lambda c, aid: c.retry_activation(aid),
    "cancel": lambda c, aid: c.cancel_activation(aid),
    "finalize": lambda c, aid: c.finalize_activation(aid),
}


@pytest.mark.anyio
@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("start", STATES)
async def test_every_transition_is_allowed_or_refused_as_documented(
    emulator: PlatfoneEmulator, clock: VirtualClock, start: str, action: str
) -> None:
    """Each (state, action) pair succeeds exactly when the reference allows it."""
    async with client_of(emulator) as client:
        aid = await _setup(start, emulator, client, clock)
        before = await client.get_activation(aid)
        if start in ALLOWED[action]:
            await ACTIONS[action](client, aid)
            after = await client.get_activation(aid)
            assert after != before
        else:
            with pytest.raises(ConflictError) as caught:
                await ACTIONS[action](client, aid)
            assert "ActivationStateException" == caught.value.error_name
            assert before == await client.get_activation(aid)


@pytest.mark.anyio
async def test_retry_needs_is_retriable(emulator: PlatfoneEmulator) -> None:
    """A non-retriable activation refuses retry even after an SMS."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "de")
        emulator.deliver_sms(activation.activation_id, "1111")
        with pytest.raises(ConflictError) as caught:
            await client.retry_activation(activation)
    assert activation.is_retriable is False
    assert "is_retriable is false" in caught.value.message


@pytest.mark.anyio
async def test_expiry_releases_an_unbilled_activation(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """At expire_at an activation without SMS expires and its money is released."""
    async with client_of(emulator) as client:
        aid = await order(client)
        clock.advance(LIFETIME - 1)
        assert ("smsRequested", "active", "reserved") == await state(client, aid)
        clock.advance(1)
        expired = await client.get_activation(aid)
        balance = await client.get_balance()
    assert ("expired", "released") == (expired.activation_status, expired.billing_status)
    assert expired.expire_at == expired.updated_at
    assert (1_000, 0) == (balance.total, balance.reserved)


@pytest.mark.anyio
async def test_expiry_keeps_a_billed_activation_billed(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """An activation that got its SMS but was never finalized expires billed."""
    async with client_of(emulator) as client:
        aid = await order(client)
        emulator.deliver_sms(aid, "1111")
        clock.advance(LIFETIME)
        assert ("smsReceived", "expired", "billed") == await state(client, aid)
        balance = await client.get_balance()
    assert (1_000 - PRICE, 0) == (balance.total, balance.reserved)


@pytest.mark.anyio
async def test_an_ended_activation_takes_no_sms(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """deliver_sms refuses an expired activation and changes nothing."""
    async with client_of(emulator) as client:
        aid = await order(client)
        clock.advance(LIFETIME)
        with pytest.raises(ValueError, match="expired"):
            emulator.deliver_sms(aid, "1111")
        assert ("smsRequested", "expired", "released") == await state(client, aid)


@pytest.mark.anyio
async def test_a_second_sms_without_retry_is_ignored(emulator: PlatfoneEmulator) -> None:
    """The API keeps showing the first SMS until a retry asks for another."""
    async with client_of(emulator) as client:
        aid = await order(client)
        assert emulator.deliver_sms(aid, "1111")
        assert not emulator.deliver_sms(aid, "2222")
        activation = await client.get_activation(aid)
    assert ("smsReceived", "1111") == (activation.sms_status, activation.sms_code)


@pytest.mark.anyio
async def test_unknown_or_foreign_activation_is_not_found(emulator: PlatfoneEmulator) -> None:
    """Another account's activation is as invisible as one that never existed."""
    other_key = emulator.add_account(balance=1_000)
    async with client_of(emulator) as client, client_of(emulator, other_key) as other:
        aid = await order(client)
        for call in (other.get_activation(aid), client.get_activation("0" * 24)):
            with pytest.raises(NotFoundError) as caught:
                await call
            assert (404, "NotFoundException") == (
                caught.value.status_code,
                caught.value.error_name,
            )


@pytest.mark.anyio
async def test_ledger_shows_what_the_api_shows(emulator: PlatfoneEmulator) -> None:
    """emulator.activations() and orders_placed() mirror the account's activations."""
    async with client_of(emulator) as client:
        first: Activation = await client.create_activation("telegram", "uk")
        await order(client)
    listed = emulator.activations()
    assert 2 == emulator.orders_placed()
    assert [first.activation_id] == [listed[0]["activation_id"]]
    assert emulator.activation(first.activation_id) == listed[0]
