"""The public API as a user writes it: type-checked by mypy --strict in CI, never run.

If a change makes any of these lines a type error, users' code breaks the same way.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import platfone_async
from platfone_async import (
    Activation,
    ActivationEndedError,
    ActivationStatus,
    AsyncPlatfone,
    Balance,
    BillingStatus,
    CatalogMatch,
    Clock,
    Country,
    MaxPriceExceededError,
    Page,
    Platfone,
    RateLimit,
    RedisBackend,
    ReportStatus,
    Service,
    SessionOutcome,
    SmsStatus,
    SpendLimit,
    SpendLimitError,
    WaitTimeoutError,
)
from platfone_async.testing import PlatfoneEmulator, VirtualClock
from platfone_async.webhooks import ActivationUpdated, WebhookHandler


async def async_user(client: AsyncPlatfone) -> None:
    balance: Balance = await client.get_balance()
    available: int = balance.available
    try:
        activation: Activation = await client.create_activation("telegram", "uk", max_price=50)
    except MaxPriceExceededError as exc:
        suggested: int | None = exc.suggested_price
        order_id: str | None = exc.order_id
        assert suggested is not None
        activation = await client.create_activation(
            "telegram", "uk", max_price=suggested, order_id=order_id
        )
    expires: dt.datetime = activation.expire_at
    async for state in client.watch_activation(activation, interval=10):
        code: str | None = state.sms_code
    try:
        done = await client.wait_for_sms(activation.activation_id, timeout=60.0)
    except ActivationEndedError as exc:
        last: Activation = exc.activation
        del last
    page: Page[Activation] = await client.get_activation_history(page=1, limit=50)
    async with client.activation("telegram", "uk", price_ceiling=100) as session:
        got: Activation = await session.wait_for_sms(timeout=300, progress=True)
    outcome: SessionOutcome | None = session.outcome
    services: list[CatalogMatch[Service]] = await client.find_service("WhatsApp")
    if services and services[0].exact:
        service_id: str = services[0].item.service_id
        del service_id
    countries: list[CatalogMatch[Country]] = await client.find_country("United Kingdom")
    seen: list[Activation] = []
    await client.wait_for_sms(activation, progress=seen.append)
    del available, expires, code, done, page, got, outcome, services, countries


async def shopper(client: AsyncPlatfone) -> None:
    budget = AsyncPlatfone("key", spend_limit=SpendLimit(500, dt.timedelta(hours=1)))
    async with client.activation("telegram", ["uk", "de"], prefer="price") as session:
        try:
            await session.wait_for_sms(timeout=120)
        except WaitTimeoutError:
            fresh: Activation = await session.replace()
            del fresh
    held: list[Activation] = session.numbers
    async with client.activation("telegram", None, price_ceiling=150):
        pass
    try:
        await budget.create_activation("telegram", "uk", max_price=100)
    except SpendLimitError as exc:
        counted: int = exc.counted
        room: dt.datetime | None = exc.room_at
        limit: SpendLimit = exc.limit
        del counted, room, limit
    del held


async def late_code_user() -> None:
    late: list[Activation] = []
    async with AsyncPlatfone("key", on_late_sms=late.append) as client:
        try:
            async with client.activation("telegram", "uk") as session:
                await session.wait_for_sms(timeout=60)
        except WaitTimeoutError as exc:
            last: Activation | None = exc.activation
            del last
        if session.outcome is SessionOutcome.FINALIZED:
            code: str | None = session.activation.sms_code
            del code
    with Platfone("key", on_late_sms=lambda activation: print(activation.sms_code)):
        pass


def models_user(activation: Activation, balance: Balance) -> None:
    # Status fields are their enums (an unknown value is a pseudo-member, not a str), so
    # these lines fail to type-check if a field is widened back to ``SmsStatus | str``.
    sms: SmsStatus = activation.sms_status
    state: ActivationStatus = activation.activation_status
    billing: BillingStatus = activation.billing_status
    report: ReportStatus | None = activation.report_status
    known: bool = sms.is_known
    if activation.sms_status is SmsStatus.SMS_RECEIVED:
        code: str | None = activation.sms_code
        del code
    as_api: dict[str, Any] = activation.to_dict()
    text: str = balance.to_json(indent=2)
    del sms, state, billing, report, known, as_api, text


def sync_user() -> None:
    limits = {**platfone_async.DOCUMENTED_RATE_LIMITS, "get_balance": RateLimit(100, 60)}
    with Platfone("key", rate_limits=limits) as client:
        cents: int = client.get_balance().available
        for past in client.iter_activation_history(limit=50):
            status: str = past.activation_status
        with client.activation("telegram", "uk") as session:
            sms: Activation = session.wait_for_sms(timeout=600, progress=True)
        country: Country = client.find_country("uk")[0].item
        del cents, status, sms, country


def test_helpers() -> None:
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock)
    client: AsyncPlatfone = emulator.client(rng=random.Random(7))
    seen: Clock = client.clock
    handler = WebhookHandler("secret", client=client)
    del seen

    @handler.on("activation.updated")
    def on_update(event: ActivationUpdated) -> None:
        activation: Activation = event.data
        del activation

    del on_update


async def fleet_user() -> None:
    backend = RedisBackend.from_url("redis://localhost:6379/0", prefix="platfone")
    async with AsyncPlatfone("key", limits_backend=backend) as client:
        blocked: float = (await client.rate_limit_state()).account_blocked_for
        await client.unblock_account()
        del blocked
    await backend.aclose()
    with Platfone("key", limits_backend=backend) as sync_client:
        blocked_for: float = sync_client.rate_limit_state().account_blocked_for
        del blocked_for
