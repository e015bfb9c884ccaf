"""The sync session shops and replaces its number like the async one (real time: the
offers may be cancelled at once, so settling waits for nothing)."""

from __future__ import annotations

import pytest

from platfone_async import Platfone
from platfone_async.testing import Offer, PlatfoneEmulator

pytestmark = pytest.mark.emulator(
    clock=None,
    rate_limits=None,
    success_rate_check=False,
    offers={
        ("telegram", "uk"): [Offer(100, 0.9, 10, cancel_after=0)],
        ("telegram", "de"): [Offer(50, 0.3, 10, cancel_after=0)],
    },
)


def test_a_sync_session_replaces_its_number(emulator: PlatfoneEmulator) -> None:
    """``session.replace()`` blocks until the next number is held; the old one is
    cancelled in the loop's background, and both are settled when the block ends."""
    with (
        Platfone(
            emulator.api_key,
            base_url=emulator.base_url,
            http_client=emulator.http_client(),
            rate_limits=None,
        ) as client,
        client.activation("telegram", ["uk", "de"], prefer="quality") as session,
    ):
        first = session.activation
        second = session.replace()
    assert ("uk", "de") == (first.country_id, second.country_id)
    assert [first.activation_id, second.activation_id] == [a.activation_id for a in session.numbers]
    assert ["canceled", "canceled"] == [
        emulator.activation(a.activation_id)["activation_status"] for a in session.numbers
    ]
