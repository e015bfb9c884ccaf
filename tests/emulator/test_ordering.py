"""Ordering on the emulator: prices, 409 continuation, stock, money and the account limits."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from platfone_async import (
    AccountBlockedError,
    ActiveActivationsLimitError,
    AsyncPlatfone,
    AuthenticationError,
    BadRequestError,
    InsufficientBalanceError,
    MaxPriceExceededError,
    NoNumbersAvailableError,
    NotFoundError,
    PermissionDeniedError,
)
from platfone_async.testing import Country, Offer, PlatfoneEmulator, VirtualClock

DAY = 86_400

pytestmark = pytest.mark.emulator(
    balance=10_000,
    offers={
        # cheap and poor, dear and good
        ("telegram", "uk"): [
            Offer(price=50, quality=0.2, count=10),
            Offer(price=200, quality=0.9, count=10),
        ],
        ("google", "us"): [Offer(price=100, quality=0.5, count=1_000)],
    },
)


def client_of(emulator: PlatfoneEmulator, api_key: str | None = None) -> AsyncPlatfone:
    return emulator.client(
        api_key,
        rate_limits=None,
        max_retries=0,
        rate_limit_wait=0,
        max_active_activations=None,
        success_rate_guard="off",
    )


@pytest.mark.anyio
@pytest.mark.parametrize(("quality_factor", "price"), [(0, 50), (100, 200)])
async def test_quality_factor_picks_the_offer(
    emulator: PlatfoneEmulator, quality_factor: int, price: int
) -> None:
    """quality_factor 0 buys the cheapest offer, 100 the best one."""
    async with client_of(emulator) as client:
        activation = await client.create_activation("telegram", "uk", quality_factor=quality_factor)
    assert price == activation.price


@pytest.mark.anyio
async def test_max_price_chooses_among_affordable_offers(emulator: PlatfoneEmulator) -> None:
    """A max_price between two offers buys the one below it, whatever the quality factor."""
    async with client_of(emulator) as client:
        activation = await client.create_activation(
            "telegram", "uk", max_price=150, quality_factor=100
        )
    assert 50 == activation.price


@pytest.mark.anyio
async def test_max_price_too_low_gives_409_and_the_order_id_continues(
    emulator: PlatfoneEmulator,
) -> None:
    """409 carries suggestedPrice and orderId; the continuation places exactly one order."""
    async with client_of(emulator) as client:
        with pytest.raises(MaxPriceExceededError) as caught:
            await client.create_activation("telegram", "uk", max_price=10)
        assert 0 == emulator.orders_placed()
        error = caught.value
        assert (409, "MaxPriceExceededException", 50) == (
            error.status_code,
            error.error_name,
            error.suggested_price,
        )
        assert error.order_id is not None
        with pytest.raises(MaxPriceExceededError) as again:
            await client.create_activation("telegram", "uk", max_price=49, order_id=error.order_id)
        assert error.order_id == again.value.order_id
        activation = await client.create_activation(
            "telegram", "uk", max_price=50, order_id=error.order_id
        )
    assert 50 == activation.price
    assert 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_an_order_id_is_used_once_and_for_its_own_pair(emulator: PlatfoneEmulator) -> None:
    """A spent or unknown continuation token is a 404 "Order not found", a token for
    another pair a 400; neither is a second order."""
    async with client_of(emulator) as client:
        with pytest.raises(MaxPriceExceededError) as caught:
            await client.create_activation("telegram", "uk", max_price=10)
        token = caught.value.order_id
        assert token is not None
        with pytest.raises(BadRequestError, match="continues an order for telegram/uk"):
            await client.create_activation("google", "us", order_id=token)
        await client.create_activation("telegram", "uk", max_price=60, order_id=token)
        with pytest.raises(NotFoundError, match="Order not found"):
            await client.create_activation("telegram", "uk", max_price=60, order_id=token)
        with pytest.raises(NotFoundError, match="Order not found"):
            await client.create_activation("telegram", "uk", order_id="f" * 24)
    assert 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_no_stock_is_no_numbers_available(emulator: PlatfoneEmulator) -> None:
    """A sold-out pair answers NoNumbersAvailableException and places nothing."""
    emulator.catalog.set_stock("telegram", "uk", 0)
    async with client_of(emulator) as client:
        with pytest.raises(NoNumbersAvailableError) as caught:
            await client.create_activation("telegram", "uk")
        info = await client.get_price("telegram", "uk")
    assert (404, "NoNumbersAvailableException") == (
        caught.value.status_code,
        caught.value.error_name,
    )
    assert 0 == info.count
    assert 0 == emulator.orders_placed()


@pytest.mark.anyio
async def test_the_last_number_sells_once(emulator: PlatfoneEmulator) -> None:
    """Stock goes down one per order; the order after the last number fails."""
    emulator.catalog.set_offers("google", "us", [Offer(price=100, count=2)])
    async with client_of(emulator) as client:
        await client.create_activation("google", "us")
        assert 1 == (await client.get_price("google", "us")).count
        await client.create_activation("google", "us")
        with pytest.raises(NoNumbersAvailableError):
            await client.create_activation("google", "us")


@pytest.mark.anyio
async def test_payment_required_when_available_balance_is_short(
    emulator: PlatfoneEmulator,
) -> None:
    """Reserved money is not available: the order that would overdraw it gets 402."""
    emulator.set_balance(150)
    async with client_of(emulator) as client:
        await client.create_activation("google", "us")
        with pytest.raises(InsufficientBalanceError) as caught:
            await client.create_activation("google", "us")
        balance = await client.get_balance()
    assert (402, "PaymentRequiredException") == (
        caught.value.status_code,
        caught.value.error_name,
    )
    assert (150, 100, 50) == (balance.total, balance.reserved, balance.available)
    assert 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_twenty_active_activations_is_the_limit(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """The 21st active order is refused; cancelling one frees its place."""
    emulator.success_rate_check = False  # one cancel in 20 orders would block the key
    async with client_of(emulator) as client:
        activations = [await client.create_activation("google", "us") for _ in range(20)]
        with pytest.raises(ActiveActivationsLimitError) as caught:
            await client.create_activation("google", "us")
        clock.advance(120)
        await client.cancel_activation(activations[0])
        await client.create_activation("google", "us")
        with pytest.raises(ActiveActivationsLimitError):
            await client.create_activation("google", "us")
    assert (429, "TooManyActivationsException") == (
        caught.value.status_code,
        caught.value.error_name,
    )
    assert 21 == emulator.orders_placed()


@pytest.mark.anyio
async def test_finalized_and_expired_activations_free_their_place(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """Only active activations count towards the 20."""
    emulator.success_rate_check = False
    async with client_of(emulator) as client:
        activations = [await client.create_activation("google", "us") for _ in range(20)]
        emulator.deliver_sms(activations[0].activation_id, "1")
        await client.finalize_activation(activations[0])
        await client.create_activation("google", "us")
        clock.advance(1200)
        for _ in range(20):
            await client.create_activation("google", "us")
    assert 41 == emulator.orders_placed()


@pytest.mark.anyio
async def test_the_active_limit_can_be_changed_or_switched_off(
    emulator: PlatfoneEmulator,
) -> None:
    """max_active sets the limit; None removes it."""
    emulator.max_active = 2
    async with client_of(emulator) as client:
        await client.create_activation("google", "us")
        await client.create_activation("google", "us")
        with pytest.raises(ActiveActivationsLimitError):
            await client.create_activation("google", "us")
        emulator.max_active = None
        for _ in range(25):
            await client.create_activation("google", "us")


@pytest.mark.anyio
async def test_low_success_rate_blocks_for_24_hours_after_the_10th_order(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """10 orders without an SMS: the 11th is refused until 24 h later."""
    async with client_of(emulator) as client:
        for _ in range(10):
            await client.create_activation("google", "us")
        clock.advance(1200)
        blocked_at = clock.time()
        with pytest.raises(AccountBlockedError) as caught:
            await client.create_activation("google", "us")
        clock.advance(DAY - 1)
        with pytest.raises(AccountBlockedError):
            await client.create_activation("google", "us")
        clock.advance(1)
        await client.create_activation("google", "us")
    assert (429, "LowSuccessRateException") == (caught.value.status_code, caught.value.error_name)
    unblock = dt.datetime.fromtimestamp(blocked_at + DAY, dt.timezone.utc)
    assert unblock == caught.value.reset_at
    assert 11 == emulator.orders_placed()


@pytest.mark.anyio
async def test_the_block_answer_carries_the_unblock_time(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """The 429 names the unblock time in its body and in x-ratelimit-reset."""
    async with client_of(emulator) as client:
        for _ in range(10):
            await client.create_activation("google", "us")
    clock.advance(1200)
    body = {"service_id": "google", "country_id": "us"}
    async with emulator.http_client(headers={"X-Api-Key": emulator.api_key}) as http:
        response = await http.post("/activation", json=body)
    unblock = int(clock.time()) + DAY
    assert 429 == response.status_code
    assert unblock == response.json()["unblockAt"]
    assert str(unblock) == response.headers["x-ratelimit-reset"]


@pytest.mark.anyio
@pytest.mark.parametrize(("orders", "successes"), [(9, 0), (10, 1)])
async def test_the_success_rate_counts_from_the_10th_order_at_7_percent(
    emulator: PlatfoneEmulator, clock: VirtualClock, orders: int, successes: int
) -> None:
    """Nine failures, or one success in ten (10%), do not block the next order."""
    async with client_of(emulator) as client:
        placed = [await client.create_activation("google", "us") for _ in range(orders)]
        for activation in placed[:successes]:
            emulator.deliver_sms(activation.activation_id, "1")
        clock.advance(1200)
        await client.create_activation("google", "us")
    assert orders + 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_unblock_and_switching_the_rule_off(
    emulator: PlatfoneEmulator, clock: VirtualClock
) -> None:
    """unblock() lifts the block; success_rate_check=False never blocks."""
    async with client_of(emulator) as client:
        for _ in range(10):
            await client.create_activation("google", "us")
        clock.advance(1200)
        with pytest.raises(AccountBlockedError):
            await client.create_activation("google", "us")
        emulator.unblock()
        await client.unblock_account()  # the client learned the block too: forget it
        await client.create_activation("google", "us")
        emulator.success_rate_check = False
        clock.advance(1200)
        for _ in range(10):
            await client.create_activation("google", "us")


@pytest.mark.anyio
async def test_unknown_key_is_unauthorized(emulator: PlatfoneEmulator) -> None:
    """A key the emulator does not know gets 401 UnauthorizedException."""
    async with client_of(emulator, "sk-nobody") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_balance()
    assert (401, "UnauthorizedException") == (caught.value.status_code, caught.value.error_name)


@pytest.mark.anyio
async def test_unverified_email_cannot_order(emulator: PlatfoneEmulator) -> None:
    """An account with an unverified e-mail gets 403 EmailNotVerifiedException."""
    key = emulator.add_account(email_verified=False)
    async with client_of(emulator, key) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            await client.create_activation("google", "us")
    assert "EmailNotVerifiedException" == caught.value.error_name


@pytest.mark.anyio
async def test_unknown_service_or_country_is_a_bad_request(emulator: PlatfoneEmulator) -> None:
    """Well-formed ids that are not in the catalog answer 400."""
    async with client_of(emulator) as client:
        with pytest.raises(BadRequestError, match="service_id"):
            await client.create_activation("nosuchservice", "us")
        with pytest.raises(BadRequestError, match="country_id"):
            await client.create_activation("google", "zz")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"country_id": "us"},
        {"service_id": "google", "country_id": "u"},
        {"service_id": "-google", "country_id": "us"},
        {"service_id": "google", "country_id": "us", "max_price": 0},
        {"service_id": "google", "country_id": "us", "max_price": 10_001},
        {"service_id": "google", "country_id": "us", "max_price": "90"},
        {"service_id": "google", "country_id": "us", "quality_factor": 101},
    ],
)
async def test_invalid_order_bodies_are_bad_requests(
    emulator: PlatfoneEmulator, body: dict[str, object]
) -> None:
    """The server checks the documented ranges and patterns itself."""
    async with emulator.http_client(headers={"X-Api-Key": emulator.api_key}) as http:
        response = await http.post("/activation", json=body)
    assert 400 == response.status_code
    assert "BadRequestException" == response.json()["errorName"]
    assert 0 == emulator.orders_placed()


@pytest.mark.anyio
async def test_a_phone_number_follows_the_country_numbering_plan(
    emulator: PlatfoneEmulator,
) -> None:
    """A number is the country's calling code, then a national mobile number of the
    plan's length in one of its mobile ranges: +44 7 and ten digits in all, +33 6 or 7."""
    emulator.catalog.set_offers("google", "uk", [Offer(price=100, count=50)])
    emulator.catalog.set_offers("google", "fr", [Offer(price=100, count=50)])
    async with client_of(emulator) as client:
        uk = [await client.create_activation("google", "uk") for _ in range(5)]
        fr = [await client.create_activation("google", "fr") for _ in range(5)]
    assert {(12, "447")} == {(len(a.phone), a.phone[:3]) for a in uk}
    assert {11} == {len(a.phone) for a in fr}
    assert {"6", "7"} >= {a.phone[2] for a in fr}
    assert 10 == len({a.phone for a in uk + fr})


def test_a_country_of_the_users_own_follows_its_stated_plan() -> None:
    """A country added with its own plan gets numbers of that length and range; one with
    an unknown calling code gets ten digits that never start with 0."""
    rng = random.Random(1)
    own = Country("xx", "Own", ("999",), national_length=8, mobile_prefixes=("55",))
    unknown = Country("yy", "Unknown", ("998",))
    assert all(p.startswith("99955") and 11 == len(p) for p in (own.phone(rng) for _ in range(20)))
    numbers = [unknown.phone(rng) for _ in range(50)]
    assert all(13 == len(p) and p[3] != "0" for p in numbers)
