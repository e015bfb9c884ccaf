"""The pytest plugin, used the way a user would: a test file in a fresh project, run by
pytest in a subprocess (``pytester``), with the plugin found through its entry point."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# The testing guide's example (docs/guides/testing.md), as a user's test file.
USER_TESTS = """
import pytest

from platfone_async import ActivationEndedError, AsyncPlatfone, Platfone, SessionOutcome
from platfone_async.testing import PlatfoneEmulator


@pytest.mark.anyio
async def test_signup_reads_the_code(
    platfone_client: AsyncPlatfone, platfone_emulator: PlatfoneEmulator
) -> None:
    activation = await platfone_client.create_activation("telegram", "uk")
    platfone_emulator.deliver_sms(activation.activation_id, "123456")
    got = await platfone_client.wait_for_sms(activation, timeout=60)
    assert "123456" == got.sms_code
    assert 1 == platfone_emulator.orders_placed()


@pytest.mark.anyio
async def test_no_sms_means_the_number_expires(
    platfone_client: AsyncPlatfone, platfone_emulator: PlatfoneEmulator
) -> None:
    async with platfone_client.activation("telegram", "uk") as session:
        with pytest.raises(ActivationEndedError):
            await session.wait_for_sms()  # 20 minutes of virtual time
    assert SessionOutcome.ALREADY_ENDED == session.outcome
    assert 0 == platfone_emulator.ledger()["billed"]


def test_the_sync_client(
    platfone_sync_client: Platfone, platfone_emulator: PlatfoneEmulator
) -> None:
    activation = platfone_sync_client.create_activation("telegram", "uk")
    platfone_emulator.deliver_sms(activation.activation_id, "654321")
    got = platfone_sync_client.wait_for_sms(activation, interval=0.1, timeout=5)
    assert "654321" == got.sms_code
"""

BOTH_BACKENDS = """
import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
"""


def test_a_users_tests_run_with_the_fixtures(pytester: pytest.Pytester) -> None:
    """The three fixtures work in a user's project, on asyncio and trio, warnings as errors."""
    pytester.makeconftest(BOTH_BACKENDS)
    pytester.makepyfile(test_signup=USER_TESTS)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=5)


def test_the_plugin_is_inactive_unless_used(pytester: pytest.Pytester) -> None:
    """Registered by its entry point, no hooks: a test not asking for its fixtures gets none."""
    pytester.makepyfile(
        test_plain=textwrap.dedent(
            """
            def test_plain(request):
                plugin = request.config.pluginmanager.get_plugin("platfone_async")
                assert "platfone_async.testing.pytest_plugin" == plugin.__name__
                assert [] == [name for name in vars(plugin) if name.startswith("pytest_")]
                assert [] == [n for n in request.fixturenames if n.startswith("platfone")]
            """
        )
    )
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=1)


def test_without_the_plugin_the_fixtures_are_unknown(pytester: pytest.Pytester) -> None:
    """-p no:platfone_async switches it off: the fixtures are then the plugin's to give."""
    pytester.makeconftest(BOTH_BACKENDS)
    pytester.makepyfile(test_signup=USER_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:platfone_async", "-p", "no:cacheprovider", timeout=60
    )
    result.assert_outcomes(errors=5)
    result.stdout.fnmatch_lines(["*fixture 'platfone_*' not found*"])


def test_the_testing_guide_shows_this_example() -> None:
    """The testing guide's "The pytest plugin" example is the file these runs use, word for word."""
    guide = Path(__file__).parents[2] / "docs" / "guides" / "testing.md"
    assert USER_TESTS.strip() in guide.read_text(encoding="utf-8")
