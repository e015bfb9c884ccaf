"""``Platfone(recover_orphans=True)``: the sync client takes over, in the background,
what a process that died left in a shared store (real time: the loop runs in a thread)."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from platfone_async import Activation, Platfone, SQLiteBackend, SystemClock
from platfone_async._ratelimit import key_fingerprint
from platfone_async.testing import Offer, PlatfoneEmulator

LEASE = 0.2


def test_a_sync_client_settles_a_dead_processs_numbers_in_the_background(
    tmp_path: Path,
) -> None:
    """A number journaled by a process whose lease lapsed, its SMS come since: a sync
    client with recover_orphans=True finalizes it on its own and hands the code to
    on_late_sms; the journal is then empty."""
    emulator = PlatfoneEmulator(sms_policy=None, rate_limits=None, success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=100)])
    path = tmp_path / "state.db"

    def client(**options: object) -> Platfone:
        return Platfone(
            emulator.api_key,
            base_url=emulator.base_url,
            http_client=emulator.http_client(),
            rate_limits=None,
            **options,  # type: ignore[arg-type]
        )

    with client() as creator:
        opened = creator.create_activation("telegram", "uk")

    async def journal_and_die() -> None:
        scope = f"{key_fingerprint(emulator.api_key)}@{emulator.base_url.rstrip('/')}"
        dead = SQLiteBackend(path, lease=LEASE).open_store(scope, SystemClock())
        await dead.journal_put(opened.activation_id, opened.to_json(), opened.expire_at.timestamp())
        await dead.aclose()

    anyio.run(journal_and_die)
    emulator.deliver_sms(opened.activation_id, "314159")
    time.sleep(2 * LEASE)
    late: list[Activation] = []
    backend = SQLiteBackend(path)
    with client(limits_backend=backend, recover_orphans=True, on_late_sms=late.append) as sync:
        deadline = time.monotonic() + 10
        while sync.open_activations() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = sync.open_activations()
    assert [] == left
    assert ["314159"] == [a.sms_code for a in late]
    assert "finalized" == emulator.activation(opened.activation_id)["activation_status"]
