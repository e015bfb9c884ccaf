"""How many Redis round trips the common calls cost, pinned so that they cannot creep back.

Each store operation is one script (``_scripts``) in one round trip; these count the
scripts a client runs on the event loop (the lease's heartbeat runs in a thread of its
own, off the request path, and is not counted), through a real Redis server, with the
documented rate limits on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from platfone_async import RedisBackend
from platfone_async._ratelimit import _redis, _scripts
from platfone_async.testing import PlatfoneEmulator

pytestmark = pytest.mark.anyio

_NAMES = {text: name for name, text in vars(_scripts).items() if name.isupper()}


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The scripts run on Redis, by name, from here on (each one round trip)."""
    counted: Counter[str] = Counter()
    run_once = _redis._Connections._run_once

    async def counting(
        self: _redis._Connections, script: str, keys: Sequence[str], args: Sequence[object]
    ) -> Any:
        counted[_NAMES[script]] += 1
        return await run_once(self, script, keys, args)

    monkeypatch.setattr(_redis._Connections, "_run_once", counting)
    return counted


def _taken(counted: Counter[str]) -> dict[str, int]:
    """What was counted since the last look (then forgotten)."""
    seen = dict(counted)
    counted.clear()
    return seen


async def test_the_common_calls_cost_the_round_trips_they_need(
    redis_url: str, prefix: str, trips: Counter[str]
) -> None:
    """create_activation: 5 (a slot, the flight, the window's take and return, and one
    for the number it opened: slot bound, claimed, journaled, counted, flight ended);
    get_activation on an open number that shows nothing new: the window's 2; one that
    shows the first SMS: 2 more (the SMS counted, the journal's record rewritten)."""
    emulator = PlatfoneEmulator(sms_policy=None, success_rate_check=False)
    backend = RedisBackend.from_url(redis_url, prefix=prefix)
    window = {"WINDOW_ACQUIRE": 1, "WINDOW_RELEASE": 1}
    try:
        async with emulator.client(limits_backend=backend, success_rate_guard="off") as client:
            opened = await client.create_activation("telegram", "uk")
            create = _taken(trips)
            await client.get_activation(opened.activation_id)
            unchanged = _taken(trips)
            await client.get_activation(opened.activation_id)
            again = _taken(trips)
            emulator.deliver_sms(opened.activation_id, "123456")
            await client.get_activation(opened.activation_id)
            with_sms = _taken(trips)
    finally:
        await backend.aclose()
    landed = {"SLOTS_ACQUIRE": 1, "FLIGHT_START": 1, "ORDER_LANDED": 1}
    assert {**landed, **window} == create
    assert (window, window) == (unchanged, again)
    assert {**window, "SUCCESS_RECORD": 1, "JOURNAL_UPDATE": 1} == with_sms


async def test_calls_at_once_return_each_token_once(
    redis_url: str, prefix: str, trips: Counter[str]
) -> None:
    """30 get_balance calls at once stamp their 30 spent tokens with 30 round trips (the
    writes kept for an outage were once re-sent by every caller waiting: hundreds)."""
    emulator = PlatfoneEmulator()
    backend = RedisBackend.from_url(redis_url, prefix=prefix)
    try:
        async with (
            emulator.client(limits_backend=backend) as client,
            anyio.create_task_group() as tg,
        ):
            for _ in range(30):
                tg.start_soon(client.get_balance)
    finally:
        await backend.aclose()
    assert 30 == trips["WINDOW_RELEASE"]
    assert {"WINDOW_ACQUIRE", "WINDOW_RELEASE"} == set(trips)
