"""The ``platfone`` command as a real process against the emulator served on loopback.

Real time, so kept short: commands that do not depend on each other run concurrently,
the SMS comes 2 s after an order (``--sms-delay``), and polls are 0.5 s apart
(``--interval``). One server is started with ``platfone emulator`` itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from platfone_async import Platfone
from platfone_async.testing import PlatfoneEmulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and ptys")

_SCRIPT = Path(sys.executable).with_name("platfone")
PLATFONE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "platfone_async"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@attrs.frozen
class Server:
    base_url: str
    api_key: str

    def argv(self, *args: str) -> list[str]:
        return [*PLATFONE, "--base-url", self.base_url, "--api-key", self.api_key, *args]

    def state(self, activation_id: str) -> Any:
        with Platfone(self.api_key, base_url=self.base_url, rate_limits=None) as client:
            return client.get_activation(activation_id)


@attrs.frozen
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFONE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(argv: Sequence[str]) -> tuple[subprocess.Popen[str], Server]:
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    assert process.stdout is not None
    url, key = process.stdout.readline().split()[-1], process.stdout.readline().split()[-1]
    assert url.startswith("http://127.0.0.1:"), url
    return process, Server(url, key)


@attrs.frozen
class Servers:
    quick: Server  # an SMS 2 s after each order; started with `platfone emulator`
    never: Server  # no SMS ever
    late: Server  # an SMS 4 s after each order (for --timeout 2 and Ctrl-C)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """Two emulators on free loopback ports, stopped (and checked) at the end."""
    common = ["--port", "0", "--no-rate-limits"]
    quick, quick_server = _start([*PLATFONE, "emulator", *common, "--sms-delay", "2"])
    never, never_server = _start(
        [sys.executable, "-m", "platfone_async.testing", "serve", *common, "--sms-delay", "-1"]
    )
    late, late_server = _start([*PLATFONE, "emulator", *common, "--sms-delay", "4"])
    try:
        yield Servers(quick_server, never_server, late_server)
    finally:
        for process in (quick, never, late):
            process.terminate()
            process.communicate(timeout=10)
    assert (0, 0, 0) == (quick.returncode, never.returncode, late.returncode)


def run(argv: Sequence[str], timeout: float = 30) -> Done:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=_env(), check=False
    )
    return Done(done.returncode, done.stdout, done.stderr)


def run_all(commands: dict[str, list[str]]) -> dict[str, Done]:
    """Run the commands at once; their results by name."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = {name: pool.submit(run, argv) for name, argv in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def _retriable_service() -> str:
    """A service whose every UK offer (in the served seed-0 catalog) allows a retry."""
    catalog = PlatfoneEmulator().catalog
    for service_id in catalog.services:
        offers = catalog.offers(service_id, "uk")
        if offers and all(o.retriable and o.count > 0 for o in offers):
            return service_id
    raise AssertionError("no retriable service in the UK")


def test_every_subcommand_as_a_process(servers: Servers) -> None:
    """Each subcommand with --json in its own process; results checked against the server."""
    q = servers.quick
    retriable = _retriable_service()
    # Before the orders: one of them finalized first made it 9,888 on a loaded machine.
    balance = run(q.argv("balance", "--json"))
    assert 0 == balance.code, balance
    assert 10_000 == balance.json()["total"]
    first = run_all(
        {
            "countries": q.argv("countries", "United", "--json"),
            "services": q.argv("--json", "services", "gmail"),
            "popular": q.argv("popular", "--json"),
            "price": q.argv("price", "WhatsApp", "United Kingdom", "--json"),
            "prices": q.argv("prices", "--service", "telegram", "--json"),
            "order": q.argv("order", retriable, "uk", "--json"),
            "order_wait": q.argv(
                "order", "telegram", "United Kingdom", "--wait", "--interval", "0.5", "--json"
            ),
            "reports": q.argv("reports", "--json"),
            "limits": q.argv("limits", "--json"),
        }
    )
    assert dict.fromkeys(first, 0) == {name: d.code for name, d in first.items()}, first
    assert {"uk", "us", "us_v"} == {c["country_id"] for c in first["countries"].json()}
    assert ["google"] == [s["service_id"] for s in first["services"].json()]
    assert "google" in [s["service_id"] for s in first["popular"].json()]
    assert {"min", "max", "suggested"} == set(first["price"].json()["price"])
    assert "telegram" == first["prices"].json()[0]["service_id"]
    assert "limiters" in first["limits"].json()
    waited = first["order_wait"].lines()
    assert "finalized" == waited[-1]["activation_status"]
    assert waited[-1]["sms_code"] == q.state(waited[0]["activation_id"]).sms_code
    aid = first["order"].json()["activation_id"]

    second = run_all(
        {
            "get": q.argv("get", aid, "--json"),
            "wait": q.argv("wait", aid, "--interval", "0.5", "--json"),
            "history": q.argv("history", "--all", "--json"),
            "cancel_too_early": q.argv("cancel", aid),
            "reasons": q.argv("reasons", aid, "--json"),
        }
    )
    assert aid == second["get"].json()["activation_id"]
    assert 0 == second["wait"].code, second["wait"].err
    assert q.state(aid).sms_code == second["wait"].lines()[-1]["sms_code"]
    assert {aid, waited[0]["activation_id"]} <= {
        a["activation_id"]
        for a in second["history"].lines()  # --all: JSON Lines
    }
    assert 1 == second["cancel_too_early"].code  # cancelable_after is 2 minutes away
    assert "platfone cancel: " in second["cancel_too_early"].err

    reason = str(second["reasons"].json()[0]["reason_id"])
    third = run_all(
        {
            "retry": q.argv("retry", aid, "--json"),
            "report": q.argv("report", aid, reason, "--message", "no good", "--json"),
        }
    )
    assert {"retry": 0, "report": 0} == {n: d.code for n, d in third.items()}, third
    assert "retryRequested" == third["retry"].json()["sms_status"] == q.state(aid).sms_status
    fourth = run_all(
        {
            "finalize": q.argv("finalize", aid, "--json"),
            "report_status": q.argv("report-status", aid, "--json"),
        }
    )
    assert "finalized" == fourth["finalize"].json()["activation_status"]
    assert "finalized" == q.state(aid).activation_status
    assert "no good" == fourth["report_status"].json()["message"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_exit_codes_and_stderr(servers: Servers) -> None:
    """Bad arguments 2, a wrong key 1, an unreachable server 1, no SMS in time 3."""
    q, never = servers.quick, servers.never
    unreachable = f"http://127.0.0.1:{_closed_port()}/api/v1"
    aid = run(never.argv("order", "telegram", "uk", "--json")).json()["activation_id"]
    done = run_all(
        {
            "bad_args": q.argv("order", "telegram"),
            "bad_option": q.argv("balance", "--frobnicate"),
            "wrong_key": [*PLATFONE, "--base-url", q.base_url, "--api-key", "wrong", "balance"],
            "unreachable": [*PLATFONE, "--base-url", unreachable, "--api-key", "k", "balance"],
            "no_sms": never.argv("wait", aid, "--timeout", "1", "--interval", "0.5"),
        }
    )
    codes = {name: d.code for name, d in done.items()}
    assert {"bad_args": 2, "bad_option": 2, "wrong_key": 1, "unreachable": 1, "no_sms": 3} == (
        codes
    )
    assert "usage: platfone order" in done["bad_args"].err
    assert "UnauthorizedException" in done["wrong_key"].err
    assert "wrong" not in done["wrong_key"].err.replace("UnauthorizedException", "")
    assert f"cannot reach {unreachable}" in done["unreachable"].err
    assert f"no SMS for activation {aid} within 1 s" in done["no_sms"].err
    assert "active" == never.state(aid).activation_status


def _read_until(stream: Any, needle: str, seen: list[str]) -> None:
    while True:
        line = stream.readline()
        assert line, f"{needle!r} never came; stderr so far: {''.join(seen)}"
        seen.append(line)
        if needle in line:
            return


def _order_and_wait(server: Server) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``order --wait --json`` running; its first line (the number ordered)."""
    process = subprocess.Popen(
        server.argv("order", "telegram", "uk", "--wait", "--interval", "0.5", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def test_two_ctrl_c_leave_the_number_to_expire_and_exit_130(servers: Servers) -> None:
    """order --wait, Ctrl-C: it says at once when it will cancel; Ctrl-C again: it leaves
    the number to expire, says so, and exits 130 at once."""
    never = servers.never
    process, ordered = _order_and_wait(never)
    assert process.stderr is not None
    err: list[str] = []
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _read_until(process.stderr, "cancelling", err)
    process.send_signal(signal.SIGINT)
    _, more_err = process.communicate(timeout=10)
    elapsed = time.monotonic() - interrupted
    stderr = "".join(err) + more_err
    phone = f"+{ordered['phone']}"
    assert 130 == process.returncode, stderr
    assert elapsed < 5  # not the two minutes until cancelable_after
    assert re.search(
        rf"cancelling \{phone} at (?:\d\d:\d\d:\d\d|\d{{4}}-\d\d-\d\d \d\d:\d\d) \S+, "
        r"in 1[012]\d s; Ctrl-C again to leave it to "
        "expire - its reserved price is released then",
        stderr,
    ), stderr
    assert f"left {phone} to expire at " in stderr
    assert "active" == never.state(ordered["activation_id"]).activation_status


def test_the_live_display_on_a_terminal_and_plain_lines_on_a_pipe(servers: Servers) -> None:
    """On a pty the line is rewritten in place (\\r) as it counts down and the code ends
    it; on a pipe each change is one plain line."""
    pexpect = pytest.importorskip("pexpect")
    q = servers.quick
    with ThreadPoolExecutor(max_workers=1) as pool:  # the pipe's run, meanwhile
        piped_run = pool.submit(
            run, q.argv("order", "telegram", "uk", "--wait", "--interval", "0.5")
        )
        screen, exitstatus = _on_a_terminal(
            pexpect, q.argv("--no-color", "order", "telegram", "uk", "--wait", "--interval", "0.5")
        )
        piped = piped_run.result()
    code = re.search(r"Code: (\d{6})", screen)
    assert 0 == exitstatus, screen
    assert code is not None, screen
    frames = [f for f in re.split(r"\r\n|\r", screen) if "telegram/uk  sms" in f]
    countdowns = re.findall(r"\(in (\d+:\d\d)\)", screen)
    assert len(set(countdowns)) >= 2, screen  # the same line, counting down
    assert f"code {code.group(1)}" in frames[-1]
    assert re.search(r"\r\+\d+  telegram/uk  smsRequested", screen)

    progress = [line for line in piped.err.splitlines() if "telegram/uk  sms" in line]
    assert 0 == piped.code, piped.err
    assert "\r" not in piped.err
    assert 2 == len(progress)
    assert "smsRequested" in progress[0]
    assert "smsReceived  code " in progress[1]


def _on_a_terminal(pexpect: Any, argv: list[str]) -> tuple[str, int]:
    """Run ``argv`` on a pseudo-terminal: (what it showed, without colours; exit status)."""
    child = pexpect.spawn(
        argv[0], argv[1:], env=_env(), timeout=20, encoding="utf-8", dimensions=(24, 200)
    )
    child.expect(pexpect.EOF)
    child.close()
    return ANSI.sub("", child.before), int(child.exitstatus)


def test_the_base_install_runs_the_demo_without_rich() -> None:
    """With rich unavailable, ``platfone demo`` still runs a whole activation."""
    script = (
        "import sys; sys.modules['rich'] = None; from platfone_async.cli import main; "
        "sys.exit(main(['demo', '--sms-delay', '0.2']))"
    )
    done = run([sys.executable, "-c", script])
    assert 0 == done.code, done.err
    assert re.search(r"Code: \d{6}", done.out)


def _pty(pexpect: Any, argv: list[str], **env: str) -> tuple[str, int]:
    """Run ``argv`` on a pseudo-terminal: (everything it wrote, escapes kept; exit status)."""
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        env={**_env(), "TERM": "xterm-256color", **env},
        timeout=20,
        encoding="utf-8",
        dimensions=(24, 200),
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.before, int(child.exitstatus)


def _without(module: str, argv: list[str]) -> list[str]:
    """``argv`` (a ``platfone`` command line) run with ``module`` unimportable."""
    script = (
        f"import sys; sys.modules[{module!r}] = None; from platfone_async.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    return [sys.executable, "-c", script, *argv[len(PLATFONE) :]]


BOX = re.compile("[┏┃┡│└━]")
COLOUR = re.compile(r"\x1b\[[0-9;]*3[0-9]m")


def test_tables_and_colour_on_a_terminal_plain_lines_elsewhere(servers: Servers) -> None:
    """A pty gets rich's table and colour; ``NO_COLOR`` keeps the table without colour;
    a pipe, and the base install (no rich) even on a pty, get the same rows as aligned
    plain lines; every run exits 0."""
    pexpect = pytest.importorskip("pexpect")
    q = servers.quick
    argv = q.argv("countries", "united")
    failing = q.argv("price", "whatsap", "uk")
    rich_tty, rich_code = _pty(pexpect, argv)
    error_tty, error_code = _pty(pexpect, failing)
    no_color, no_color_code = _pty(pexpect, argv, NO_COLOR="1")
    base_tty, base_code = _pty(pexpect, _without("rich", argv))
    piped = run(argv)
    assert (0, 2, 0, 0, 0) == (rich_code, error_code, no_color_code, base_code, piped.code)
    assert BOX.search(rich_tty)
    assert COLOUR.search(error_tty), error_tty  # the error in red
    assert BOX.search(no_color)
    assert not COLOUR.search(no_color)
    for plain in (base_tty.replace("\r\n", "\n"), piped.out):
        assert not BOX.search(plain)
        assert not ANSI.search(plain)
        rows = [re.split(r"\s{2,}", line.strip()) for line in plain.splitlines()]
        assert ["id", "name", "codes"] == rows[1]
        assert ["uk", "United Kingdom", "+44"] in rows


def test_a_missing_extra_exits_2_and_names_it() -> None:
    """``platfone emulator`` without uvicorn: exit 2, naming the extra and how to install
    it."""
    done = run(_without("uvicorn", [*PLATFONE, "emulator", "--port", "0"]))
    assert 2 == done.code
    assert "needs the 'emulator' extra: pip install " in done.err
    assert "[emulator]'" in done.err


def test_a_code_after_the_timeout_or_a_ctrl_c_is_printed(servers: Servers) -> None:
    """The SMS at 4 s. order --wait --timeout 2: the code on stdout (as text, as the last
    JSON line), a note that it came late, the number finalized, exit 0. Ctrl-C at once
    instead: finalized while it waits to cancel, the code printed, exit 130."""
    late = servers.late
    interrupted, ordered = _order_and_wait(late)
    interrupted.send_signal(signal.SIGINT)
    argv = ("order", "telegram", "uk", "--wait", "--timeout", "2", "--interval", "0.5")
    done = run_all({"text": late.argv(*argv), "json": late.argv(*argv, "--json")})
    out, err = interrupted.communicate(timeout=30)
    assert {"text": 0, "json": 0} == {n: d.code for n, d in done.items()}, done
    last = done["json"].lines()[-1]
    state = late.state(last["activation_id"])
    assert (state.sms_code, "finalized") == (last["sms_code"], state.activation_status)
    assert "Code: " in done["text"].out
    for d in done.values():
        assert "the code came after the --timeout; +" in d.err
        assert "billed for it" in d.err
    state = late.state(ordered["activation_id"])
    assert 130 == interrupted.returncode, err
    assert "finalized" == state.activation_status
    assert state.sms_code == json.loads(out.splitlines()[-1])["sms_code"]
    assert "the code came after the interruption" in err


def test_a_second_ctrl_c_after_the_sms_says_billed_never_released(servers: Servers) -> None:
    """Ctrl-C, the SMS comes (billed), the finalize hangs; Ctrl-C again: it leaves the
    number saying it was billed, with the code - never "released" - and prints the code."""
    late = servers.late
    control = late.base_url.split("/api/")[0] + "/_emulator/inject_fault"
    fault = {"route": "finalize_activation", "fault": {"delay": 20}}
    httpx.post(control, json=fault).raise_for_status()
    process, ordered = _order_and_wait(late)
    assert process.stderr is not None
    process.send_signal(signal.SIGINT)
    err: list[str] = []
    _read_until(process.stderr, "a code arrived late", err)
    said_before = len(err)
    process.send_signal(signal.SIGINT)
    out, more_err = process.communicate(timeout=10)
    after = "".join(err[said_before:]) + more_err
    state = late.state(ordered["activation_id"])
    assert 130 == process.returncode, "".join(err) + more_err
    assert "billed" == state.billing_status
    assert f"its SMS came and was billed (code {state.sms_code})" in after
    assert "released" not in after
    assert state.sms_code == json.loads(out.splitlines()[-1])["sms_code"]


#: ``platfone`` whose HTTP calls, when interrupted, end with a RuntimeError (as a
#: library's clean-up may turn an interruption), and whose second read of the
#: activation hangs - saying so on stderr - until it is interrupted.
TEARING = """
import sys, anyio, httpx
from platfone_async.cli import main

class Tearing(httpx.AsyncHTTPTransport):
    polls = 0

    async def handle_async_request(self, request):
        tail = request.url.path.rsplit("/", 1)[-1]
        hang = False
        if request.method == "GET" and len(tail) == 24:
            Tearing.polls += 1
            hang = Tearing.polls == 2
        try:
            if hang:
                print("hanging", file=sys.stderr, flush=True)
                await anyio.sleep_forever()
            return await super().handle_async_request(request)
        except BaseException as exc:
            if isinstance(exc, Exception):
                raise
            raise RuntimeError(f"connection torn down ({type(exc).__name__})") from exc

class Client(httpx.AsyncClient):
    def __init__(self, **kwargs):
        super().__init__(transport=Tearing(), **kwargs)

httpx.AsyncClient = Client
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_is_counted_whatever_exception_the_torn_down_call_ends_with(
    servers: Servers,
) -> None:
    """Ctrl-C while a poll hangs, and that poll ends with a RuntimeError; the SMS comes
    (billed) while the number waits to be cancelled; its finalize hangs; Ctrl-C again,
    and the finalize ends with a RuntimeError too. Still: exit 130, the code printed as
    after the interruption, the number left saying it was billed, never "released"."""
    late = servers.late
    control = late.base_url.split("/api/")[0] + "/_emulator/inject_fault"
    fault = {"route": "finalize_activation", "fault": {"delay": 20}}
    httpx.post(control, json=fault).raise_for_status()
    argv = late.argv("order", "telegram", "uk", "--wait", "--interval", "0.5", "--json")
    process = subprocess.Popen(
        [sys.executable, "-c", TEARING, *argv[len(PLATFONE) :]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    ordered = json.loads(process.stdout.readline())
    err: list[str] = []
    _read_until(process.stderr, "hanging", err)
    process.send_signal(signal.SIGINT)
    _read_until(process.stderr, "a code arrived late", err)
    said_before = len(err)
    process.send_signal(signal.SIGINT)
    out, more_err = process.communicate(timeout=10)
    after = "".join(err[said_before:]) + more_err
    state = late.state(ordered["activation_id"])
    assert 130 == process.returncode, "".join(err) + more_err
    assert ("active", "billed") == (state.activation_status, state.billing_status)
    assert f"the code came after the interruption; +{ordered['phone']}" in after
    assert f"its SMS came and was billed (code {state.sms_code})" in after
    assert "released" not in after
    assert state.sms_code == json.loads(out.splitlines()[-1])["sms_code"]
