"""``platfone order SERVICE any|C1,C2 [--prefer ...]`` shops; ``--spend-limit`` caps money."""

from __future__ import annotations

from pathlib import Path

import pytest

from platfone_async.testing import Fault, PlatfoneEmulator, VirtualClock

from ..session.test_shopping import sell_only
from .test_commands import Cli, _emulator

pytestmark = pytest.mark.anyio

NO_NUMBERS = Fault(
    status=404,
    body={"errorName": "NoNumbersAvailableException", "errorMessage": "no numbers"},
)


def _market(clock: VirtualClock, sms_delay: float | None = None) -> PlatfoneEmulator:
    emulator = _emulator(clock, sms_delay)
    emulator.set_offer("google", "uk", price=90, quality=0.9, count=5, cancel_after=0)
    emulator.set_offer("google", "de", price=40, quality=0.3, count=5, cancel_after=0)
    return emulator


async def test_order_among_countries_takes_the_best_offer_and_falls_back(
    clock: VirtualClock,
) -> None:
    """``order google uk,de --prefer price``: de first; when de has no number, uk, said
    on stderr; one number ordered each time."""
    emulator = _market(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        cheapest = await cli("order", "google", "uk,Germany", "--prefer", "price", "--json")
        emulator.inject_fault("create_activation", NO_NUMBERS)
        fallback = await cli("order", "google", "uk,de", "--prefer", "price", "--json")
    assert (0, 0) == (cheapest.code, fallback.code), fallback.err
    assert "de" == cheapest.json()["country_id"]
    assert "uk" == fallback.json()["country_id"]
    assert "de: no numbers; trying the next offer" in fallback.err
    assert 2 == emulator.orders_placed()


async def test_order_any_wait_shops_and_settles(clock: VirtualClock) -> None:
    """``order google any --wait --prefer quality``: the session shops every country,
    gets the code and finalizes."""
    emulator = _market(clock, sms_delay=5)
    sell_only(emulator, "google", "uk", "de")
    cli = Cli(emulator, clock)
    async with clock.autojump():
        run = await cli("order", "google", "any", "--prefer", "quality", "--wait", "--json")
    assert 0 == run.code, run.err
    last = run.lines()[-1]
    assert ("uk", "finalized") == (last["country_id"], last["activation_status"])


async def test_order_with_no_offer_in_stock_orders_nothing(clock: VirtualClock) -> None:
    """Nothing within the ceiling: exit 1, said on stderr, no order sent."""
    emulator = _market(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        run = await cli("order", "google", "uk,de", "--price-ceiling", "10")
    assert 1 == run.code
    assert "no offer of google in stock within $0.10" in run.err
    assert 0 == emulator.request_count("create_activation")


async def test_a_spend_limit_refuses_an_order_over_it(
    clock: VirtualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--spend-limit 100/1h`` with the commands' state in one file: the second order at
    90 is refused before it leaves (exit 1, the limit in the message); a malformed limit
    is a usage error."""
    monkeypatch.setenv("PLATFONE_STATE_URL", f"sqlite://{tmp_path / 'state.db'}")
    emulator = _market(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        first = await cli("--spend-limit", "100/1h", "order", "google", "uk", "--max-price", "90")
        again = await cli("order", "google", "uk", "--max-price", "90", "--spend-limit", "100/1h")
        bad = await cli("--spend-limit", "lots", "balance")
    assert (0, 1, 2) == (first.code, again.code, bad.code), again.err
    assert "SpendLimitError: spend limit 100 cents per 1h: 90 cents reserved" in again.err
    assert "'lots' must read CENTS/PERIOD" in capsys.readouterr().err  # (argparse's)
    assert 1 == emulator.orders_placed()
