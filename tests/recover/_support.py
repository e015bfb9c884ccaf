"""What the in-process recovery tests share: the emulator they run against."""

from __future__ import annotations

import pytest

from platfone_async.testing import Offer

#: Money enough, no SMS unless a test delivers one, numbers cancellable 120 s in.
EMULATOR = pytest.mark.emulator(
    balance=100_000,
    success_rate_check=False,
    sms_policy=None,
    offers={("telegram", "uk"): [Offer(100, 0.8, 1_000, cancel_after=120)]},
)
