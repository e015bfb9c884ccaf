"""Usage conventions: ``--version``, "did you mean" for a misspelt command or option,
key problems said in the command's terms, a refused key explained."""

from __future__ import annotations

import io
import re
from typing import Any

import attrs
import pytest

import platfone_async
from platfone_async.cli import amain
from platfone_async.testing import PlatfoneEmulator, VirtualClock


@attrs.frozen
class Shown:
    code: int
    out: str
    err: str


async def _run(*argv: str, emulator: PlatfoneEmulator | None = None) -> Shown:
    out, err = io.StringIO(), io.StringIO()
    options: dict[str, Any] = {} if emulator is None else {"http_client": emulator.http_client()}
    code = await amain(list(argv), stdout=out, stderr=err, **options)
    return Shown(code, out.getvalue(), err.getvalue())


async def _usage(capsys: pytest.CaptureFixture[str], *argv: str) -> Shown:
    """A run that argparse ends (it writes to the process's own stderr)."""
    code = await amain(list(argv))
    captured = capsys.readouterr()
    return Shown(code, captured.out, captured.err)


@pytest.fixture
def emulator() -> PlatfoneEmulator:
    """An emulator on a virtual clock (these commands make one request at most)."""
    return PlatfoneEmulator(clock=VirtualClock())


@pytest.mark.anyio
async def test_version_prints_the_package_version() -> None:
    """``platfone --version`` prints ``platfone <version>`` on stdout and exits 0."""
    shown = await _run("--version")
    assert 0 == shown.code
    assert shown.out.startswith(f"platfone {platfone_async.__version__} (platfone-async, Python ")


@pytest.mark.anyio
async def test_a_misspelt_command_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    """``platfone balanse``: exit 2 and "did you mean 'balance'", not the list of all."""
    shown = await _usage(capsys, "balanse")
    assert 2 == shown.code
    assert "unknown command 'balanse'; did you mean 'balance'?" in shown.err
    assert "'reports'" not in shown.err


@pytest.mark.anyio
async def test_an_unknown_command_without_a_close_one_lists_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A command nothing resembles fails as argparse does: the choices listed."""
    shown = await _usage(capsys, "xyzzy")
    assert 2 == shown.code
    assert "invalid choice: 'xyzzy'" in shown.err
    assert "'balance'" in shown.err


@pytest.mark.anyio
async def test_a_misspelt_option_gets_a_suggestion_from_its_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``order ... --max-prise 5``: exit 2, naming ``--max-price`` (an option of
    ``order``); a global one is suggested too."""
    order = await _usage(capsys, "--api-key", "k", "order", "telegram", "uk", "--max-prise", "5")
    global_ = await _usage(capsys, "--api-key", "k", "balance", "--sandbx")
    assert (2, 2) == (order.code, global_.code)
    assert "unrecognized arguments: --max-prise 5" in order.err
    assert "--max-prise: did you mean --max-price?" in order.err
    assert "--sandbx: did you mean --sandbox?" in global_.err


@pytest.mark.anyio
async def test_a_missing_key_is_said_in_the_commands_terms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ``--api-key`` and no ``PLATFONE_API_KEY``: exit 2 naming both, not ``api_key=``."""
    monkeypatch.delenv("PLATFONE_API_KEY", raising=False)
    shown = await _run("balance")
    assert 2 == shown.code
    assert "platfone balance: no API key: pass --api-key KEY or set PLATFONE_API_KEY\n" == (
        shown.err
    )


@pytest.mark.anyio
async def test_a_malformed_key_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key with a line break: exit 2, naming the variable it came from, never the key."""
    monkeypatch.setenv("PLATFONE_API_KEY", "secret\nkey")
    shown = await _run("balance")
    assert 2 == shown.code
    assert "the API key from $PLATFONE_API_KEY must be a single-line string" in shown.err
    assert "secret" not in shown.err


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("flags", "source", "where"),
    [
        (["--api-key", "wrong"], "--api-key", "the API at "),
        ([], "$PLATFONE_API_KEY", "the API at "),
    ],
)
async def test_a_refused_key_says_where_it_came_from(
    emulator: PlatfoneEmulator,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    source: str,
    where: str,
) -> None:
    """A 401: exit 1, the error name, where the key came from and which API refused it."""
    monkeypatch.setenv("PLATFONE_API_KEY", "also-wrong")
    shown = await _run("--base-url", emulator.base_url, *flags, "balance", emulator=emulator)
    assert 1 == shown.code
    assert "UnauthorizedException" in shown.err
    assert f"the key from {source} was refused by {where}{emulator.base_url}" in shown.err
    assert "wrong" not in shown.err.replace("UnauthorizedException", "")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sandbox", "said"),
    [
        (True, "the sandbox (--sandbox), whose keys differ from production ones"),
        (False, "the production API, whose keys differ from sandbox ones (--sandbox)"),
    ],
)
async def test_a_refused_key_says_sandbox_and_production_keys_differ(
    emulator: PlatfoneEmulator, sandbox: bool, said: str
) -> None:
    """Against the sandbox or production, a 401 reminds that their keys differ."""
    flags = ["--sandbox"] if sandbox else []
    # The emulator answers in place of the real API (the transport ignores the host).
    shown = await _run("--api-key", "nope", *flags, "balance", emulator=emulator)
    assert 1 == shown.code
    assert re.search(rf"the key from --api-key was refused by {re.escape(said)}", shown.err)
