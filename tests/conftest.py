"""Shared fixtures: every async test runs on asyncio and on trio, on a virtual clock.

``clock`` is a fresh :class:`VirtualClock`; ``emulator`` a fresh emulator on it, built
as the test's nearest ``@pytest.mark.emulator(...)`` says (a module sets it once with
``pytestmark``): its keyword arguments go to ``PlatfoneEmulator``, except ``offers``,
``{(service_id, country_id): [Offer, ...]}``, set in its catalog. ``clock=None`` there
gives an emulator on real time (for the sync facade, whose loop runs in a thread).
"""

from __future__ import annotations

import copy
import signal
from pathlib import Path
from typing import Any

import pytest

from platfone_async.testing import PlatfoneEmulator, VirtualClock


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts a background job (`pytest ... &`) with SIGINT
    # ignored, and a child inherits an ignored signal: the tests' real processes would
    # then never see their Ctrl-C and hang. With a handler here, they start as from a
    # terminal (exec resets a handled signal to its default).
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers",
        "emulator(**options): how the `emulator` fixture is built - PlatfoneEmulator "
        "options, and offers={(service_id, country_id): [Offer, ...]}",
    )


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$XDG_STATE_HOME`` in the test's own directory, never the user's: the ``platfone``
    command journals there by default (subprocesses inherit it); no shared store is
    picked from the environment."""
    home = tmp_path / "state-home"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.delenv("PLATFONE_STATE_URL", raising=False)
    monkeypatch.delenv("PLATFONE_REDIS_URL", raising=False)
    return home


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend."""
    return str(request.param)


@pytest.fixture
def clock() -> VirtualClock:
    """A fresh virtual clock: time moves when told to, or by itself under autojump."""
    return VirtualClock()


@pytest.fixture
def emulator(request: pytest.FixtureRequest, clock: VirtualClock) -> PlatfoneEmulator:
    """A fresh emulator on ``clock``, as the nearest ``@pytest.mark.emulator`` says."""
    marker = request.node.get_closest_marker("emulator")
    # A copy: the marker's offers are made once, at import, and an emulator sells from them.
    options: dict[str, Any] = {"clock": clock, **copy.deepcopy(marker.kwargs if marker else {})}
    offers = options.pop("offers", {})
    emulator = PlatfoneEmulator(**options)
    for (service_id, country_id), found in offers.items():
        emulator.catalog.set_offers(service_id, country_id, found)
    return emulator
