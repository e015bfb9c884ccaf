"""``PLATFONE_STATE_URL`` picks the store every client without ``limits_backend`` uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from platfone_async import AsyncPlatfone, SQLiteBackend
from platfone_async._ratelimit import RateLimit
from platfone_async.testing import PlatfoneEmulator

pytestmark = pytest.mark.anyio


async def test_a_sqlite_state_url_shares_the_slots_through_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///path``: an order's slot is in that file, seen by another store on it."""
    path = tmp_path / "state.db"
    monkeypatch.setenv("PLATFONE_STATE_URL", f"sqlite://{path}")
    emulator = PlatfoneEmulator()
    async with emulator.client(success_rate_guard="off") as client:
        await client.create_activation("telegram", "uk")
    store = SQLiteBackend(path).open_store(_scope(client), client.clock)
    seen = await store.snapshot({"get_balance": RateLimit(300, 60)}, 20)
    assert (1, 1) == (seen.slots.in_use, seen.slots.bound)


def _scope(client: AsyncPlatfone) -> str:
    limits = client._http.limits
    return f"{limits.key}@{limits.base_url}"


@pytest.mark.parametrize("url", ["postgres://db/state", "sqlite://"])
def test_a_state_url_that_names_no_store_is_refused(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheme no store serves, or a SQLite URL without a file, is a ValueError."""
    monkeypatch.setenv("PLATFONE_STATE_URL", url)
    with pytest.raises(ValueError, match="PLATFONE_STATE_URL"):
        AsyncPlatfone("key")
