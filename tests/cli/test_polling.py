"""How often ``order --wait`` and ``wait`` poll: ``--interval``, else the poll hint a
server advertises (the emulator: 1 s), else every 10 s as the real API asks."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from platfone_async.cli import amain
from platfone_async.testing import Offer, PlatfoneEmulator, SmsPolicy, VirtualClock


async def _order_wait(
    emulator: PlatfoneEmulator, clock: VirtualClock, *extra: str, strip_hint: bool = False
) -> tuple[int, float]:
    """Run ``order telegram uk --wait``; its exit code and the virtual seconds it took."""

    async def strip(response: httpx.Response) -> None:
        response.headers.pop("x-poll-interval", None)  # as the real API: no hint

    hooks: dict[str, Any] = {"response": [strip]} if strip_hint else {}
    started = clock.time()
    async with clock.autojump():
        code = await amain(
            [
                *("--base-url", emulator.base_url, "--api-key", emulator.api_key),
                *("order", "telegram", "uk", "--wait", "--json", *extra),
            ],
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            http_client=emulator.http_client(event_hooks=hooks),
            clock=clock,
            limits_backend=None,  # in memory: a SQLite file's threads would let time jump
        )
    return code, clock.time() - started


def _emulator(clock: VirtualClock) -> PlatfoneEmulator:
    emulator = PlatfoneEmulator(clock=clock, sms_policy=SmsPolicy(delay=4.0))
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=120)])
    return emulator


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock: the waits below take no real time."""
    return VirtualClock()


@pytest.mark.anyio
async def test_against_the_emulator_a_wait_follows_its_one_second_hint(
    clock: VirtualClock,
) -> None:
    """An SMS sent 4 s after the order is seen within about a second, not after 10 s."""
    emulator = _emulator(clock)
    code, took = await _order_wait(emulator, clock)
    assert 0 == code
    assert took < 6.5
    assert 5 <= emulator.request_count("get_activation") <= 8  # a poll a second


@pytest.mark.anyio
async def test_without_a_hint_a_wait_polls_every_10_seconds(clock: VirtualClock) -> None:
    """A server that advertises nothing (the real API) is polled every 10 s, as it asks."""
    emulator = _emulator(clock)
    code, took = await _order_wait(emulator, clock, strip_hint=True)
    assert 0 == code
    assert 8.0 <= took < 14.0
    assert emulator.request_count("get_activation") <= 3  # first look, 10 s, settling


@pytest.mark.anyio
async def test_an_explicit_interval_wins_over_the_hint(clock: VirtualClock) -> None:
    """``--interval 20`` is followed even where the server hints 1 s."""
    emulator = _emulator(clock)
    code, took = await _order_wait(emulator, clock, "--interval", "20")
    assert 0 == code
    assert took >= 16.0
    assert emulator.request_count("get_activation") <= 3  # first look, 10 s, settling


@pytest.mark.anyio
async def test_the_emulator_advertises_the_hint_on_activation_answers(
    clock: VirtualClock,
) -> None:
    """The order and each look at an activation carry ``x-poll-interval: 1``; other
    answers do not."""
    emulator = _emulator(clock)
    async with emulator.http_client(headers={"x-api-key": emulator.api_key}) as http:
        ordered = await http.post("activation", json={"service_id": "telegram", "country_id": "uk"})
        got = await http.get(f"activation/{ordered.json()['activation_id']}")
        balance = await http.get("user/balance")
    assert ("1", "1") == (ordered.headers["x-poll-interval"], got.headers["x-poll-interval"])
    assert "x-poll-interval" not in balance.headers
