"""A `Platfone` never closed, at interpreter exit: the process ends, nothing is dropped.

Each test runs a user's script in a fresh interpreter against the emulator served on a
loopback port. The script prints ``END <time.monotonic()>`` as its last act; the test
measures from there to the process's end (the clock is the system's, shared by both
processes). The simplest script and the one ending in an exception run on every Python
the machine has among 3.10-3.13 (with this environment's runtime dependencies on
``PYTHONPATH``); the others on the suite's own.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

import platfone_async
from platfone_async._progress import local_time
from platfone_async._sync import _exit
from tests._served import Served, serve

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a POSIX process tree")

#: An unclosed client's interpreter ends this soon after the script's last line.
EXIT_SECONDS = 5.0
#: A test fails (the child is killed) when its child runs this long: a hung exit.
HANG_SECONDS = 30.0
KEY = "exit-key"

PRELUDE = """
import json, sys, threading, time
import httpx
from platfone_async import Platfone

BASE_URL, API_KEY, CONTROL_URL = sys.argv[1:4]

def end():
    print("END", time.monotonic(), flush=True)
"""


def _version_of(python: str) -> str | None:
    try:
        done = subprocess.run(
            [python, "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _interpreters() -> list[Any]:
    """The suite's Python, and each other 3.10-3.13 found on PATH or under pyenv."""
    own = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = {own: sys.executable}
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in range(10, 14):
        version = f"3.{minor}"
        # pyenv's own builds first: its shims on PATH answer only for the selected ones.
        candidates = [
            *sorted(glob.glob(f"{root}/versions/{version}.*/bin/python")),
            f"python{version}",
        ]
        for python in candidates:
            if version in found:
                break
            if _version_of(python) == version:
                found[version] = python
    return [
        pytest.param(python, id=version if python != sys.executable else f"{version}-suite")
        for version, python in sorted(found.items())
    ]


INTERPRETERS = _interpreters()


def _runtime_files() -> set[Path]:
    """The top-level packages and modules of platfone-async's runtime dependencies, all
    installed ones whatever their markers (a 3.10 needs exceptiongroup, the dev extra's)."""
    files: set[Path] = set()
    seen: set[str] = set()
    todo = ["platfone-async"]
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        dist = importlib.metadata.distribution(name)
        for requirement in dist.requires or ():
            if "extra ==" not in requirement:
                todo.append(re.split(r"[^A-Za-z0-9._-]", requirement, maxsplit=1)[0])
        if name == "platfone-async":
            continue
        for file in dist.files or ():
            top = file.parts[0]
            if top not in ("..", "__pycache__") and not top.endswith((".dist-info", ".pth")):
                files.add(Path(str(dist.locate_file(top))))
    return files


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for PYTHONPATH: this checkout's package and its runtime dependencies."""
    site = tmp_path_factory.mktemp("site")
    (site / "platfone_async").symlink_to(Path(platfone_async.__file__).parent)
    for path in _runtime_files():
        (site / path.name).symlink_to(path)
    return site


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """The emulator on a loopback port: real time, no SMS unless delivered."""
    with serve("--sms-delay", "-1", "--api-key", KEY) as server:
        yield server


@pytest.fixture
def control(served: Served) -> Iterator[httpx.Client]:
    """The served emulator's control API, reset before each test."""
    with httpx.Client(base_url=served.control_url, timeout=10, trust_env=False) as http:
        assert 200 == http.post("reset").status_code
        yield http


def _get(http: httpx.Client, name: str, **params: str) -> Any:
    response = http.get(name, params=params)
    assert 200 == response.status_code, response.text
    return response.json()["result"]


def _set_offer(http: httpx.Client, service_id: str, *, cancel_after: int) -> None:
    offer = {"service_id": service_id, "country_id": "uk", "price": 50}
    response = http.post("set_offer", content=json.dumps({**offer, "cancel_after": cancel_after}))
    assert 200 == response.status_code, response.text


@attrs.frozen
class Ended:
    """What a script's process left: its status, output, and how long its exit took."""

    returncode: int
    lines: list[str]
    stderr: str
    exit_seconds: float

    def json(self, index: int = 0) -> Any:
        return json.loads(self.lines[index])


def run(
    served: Served, body: str, *, python: str = sys.executable, site: Path | None = None
) -> Ended:
    """Run PRELUDE + body in a fresh interpreter; ``site``: its PYTHONPATH, for a
    Python other than the suite's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PLATFONE"))}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    script = PRELUDE + textwrap.dedent(body)
    argv = [python, "-c", script, served.base_url, KEY, served.control_url]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=HANG_SECONDS, env=env, check=False
        )
    except subprocess.TimeoutExpired as hung:
        raise AssertionError(f"the script did not exit within {HANG_SECONDS} s") from hung
    exited = time.monotonic()
    lines = done.stdout.splitlines()
    ends = [line for line in lines if line.startswith("END ")]
    assert 1 == len(ends), (done.stdout, done.stderr)
    printed = [line for line in lines if not line.startswith("END ")]
    return Ended(done.returncode, printed, done.stderr, exited - float(ends[0].split()[1]))


def _site_for(python: str, site: Path) -> Path | None:
    return None if python == sys.executable else site


@pytest.mark.parametrize("python", INTERPRETERS)
def test_the_simplest_script_exits(python: str, served: Served, site: Path) -> None:
    """Create, call once, never close: the interpreter ends within seconds, quietly."""
    ended = run(
        served,
        """
        client = Platfone(api_key=API_KEY, base_url=BASE_URL)
        print(json.dumps(client.get_balance().total))
        end()
        """,
        python=python,
        site=_site_for(python, site),
    )
    assert (0, "") == (ended.returncode, ended.stderr)
    assert 10000 == ended.json()
    assert ended.exit_seconds < EXIT_SECONDS


@pytest.mark.parametrize("python", INTERPRETERS)
def test_a_script_ending_in_an_exception_exits(python: str, served: Served, site: Path) -> None:
    """An uncaught exception after a call on an unclosed client: traceback, status 1, end."""
    ended = run(
        served,
        """
        client = Platfone(api_key=API_KEY, base_url=BASE_URL)
        client.get_balance()
        end()
        raise LookupError("the script's own bug")
        """,
        python=python,
        site=_site_for(python, site),
    )
    assert 1 == ended.returncode
    assert ended.stderr.endswith("LookupError: the script's own bug\n"), ended.stderr
    assert ended.exit_seconds < EXIT_SECONDS


def test_an_open_iterator_is_closed_quietly(served: Served, control: httpx.Client) -> None:
    """An iterator left suspended (and its client unclosed): closed at exit, no output."""
    ended = run(
        served,
        """
        client = Platfone(API_KEY, base_url=BASE_URL)
        client.create_activation("telegram", "uk")
        client.create_activation("telegram", "uk")
        history = client.iter_activation_history(limit=1)
        print(json.dumps(next(history).activation_id))
        end()
        """,
    )
    assert (0, "") == (ended.returncode, ended.stderr)
    assert ended.exit_seconds < EXIT_SECONDS


def test_sessions_open_at_exit_are_settled_and_said(served: Served, control: httpx.Client) -> None:
    """Three sessions never left - one with its SMS, one without, one whose wait runs in a
    daemon thread: at exit each is finalized or cancelled, as the server shows, and a
    WARNING names each number and what was done."""
    _set_offer(control, "telegram", cancel_after=0)
    ended = run(
        served,
        """
        import anyio

        class Ahead:
            # 5 s ahead: a session cancels only a margin past cancelable_after.
            def time(self):
                return time.time() + 5.0

            def monotonic(self):
                return time.monotonic()

            async def sleep(self, seconds):
                await anyio.sleep(max(seconds, 0.0))

        client = Platfone(API_KEY, base_url=BASE_URL, clock=Ahead())
        paid = client.activation("telegram", "uk").__enter__()
        sms = {"activation_id": paid.activation.activation_id, "code": "4711"}
        assert 200 == httpx.post(CONTROL_URL + "deliver_sms", json=sms).status_code
        unused = client.activation("telegram", "uk").__enter__()
        polled = threading.Event()
        threaded = []

        def wait_in_a_daemon_thread():
            with client.activation("telegram", "uk") as session:
                threaded.append(session)
                session.wait_for_sms(progress=lambda state: polled.set())

        threading.Thread(target=wait_in_a_daemon_thread, daemon=True).start()
        polled.wait()
        for session in (paid, unused, threaded[0]):
            print(json.dumps([session.activation.activation_id, session.activation.phone]))
        end()
        """,
    )
    assert 0 == ended.returncode, ended.stderr
    assert ended.exit_seconds < EXIT_SECONDS
    (paid, paid_phone), (unused, unused_phone), (threaded, threaded_phone) = [
        ended.json(i) for i in range(3)
    ]
    states = {
        id_: _get(control, "activation", activation_id=id_) for id_ in (paid, unused, threaded)
    }
    assert ["finalized", "canceled", "canceled"] == [
        states[id_]["activation_status"] for id_ in (paid, unused, threaded)
    ]
    assert 0 == _get(control, "balance", api_key=KEY)["reserved"]
    said = ended.stderr.splitlines()
    for id_ in (paid, unused, threaded):
        assert any(id_ in line and "interpreter exit" in line for line in said), said
    assert any(paid_phone in line and "finalized" in line for line in said), said
    for phone in (unused_phone, threaded_phone):
        assert any(phone in line and "cancelled" in line for line in said), ended.stderr


def test_a_session_not_cancelable_yet_is_left_and_said_at_once(
    served: Served, control: httpx.Client
) -> None:
    """A session whose cancel is minutes away does not hold the exit: after a few seconds
    it is left, and the WARNING says until when - the server's ``expire_at``."""
    _set_offer(control, "whatsapp", cancel_after=600)
    ended = run(
        served,
        """
        client = Platfone(API_KEY, base_url=BASE_URL)
        session = client.activation("whatsapp", "uk").__enter__()
        print(json.dumps([session.activation.activation_id, session.activation.phone]))
        end()
        """,
    )
    assert 0 == ended.returncode, ended.stderr
    assert ended.exit_seconds < _exit.LEAVE_SECONDS + _exit.CUT_SHORT_SECONDS + EXIT_SECONDS
    activation_id, phone = ended.json()
    state = _get(control, "activation", activation_id=activation_id)
    assert ("active", "reserved") == (state["activation_status"], state["billing_status"])
    expires = local_time(state["expire_at"])
    said = ended.stderr.splitlines()
    assert any(phone in line and f"expire at {expires}" in line for line in said), said
    # No Ctrl-C was pressed: the notice offers one, not "again".
    (notice,) = [line for line in said if line.startswith(f"cancelling +{phone}")]
    assert "; Ctrl-C to leave it to expire" in notice, notice


def test_ctrl_c_at_exit_leaves_at_once(served: Served, control: httpx.Client) -> None:
    """Ctrl-C while the exit waits for a session to settle cuts it short at once, and the
    WARNING still says what was left."""
    _set_offer(control, "whatsapp", cancel_after=600)
    ended = run(
        served,
        """
        import logging, signal

        class CtrlC(logging.StreamHandler):
            # Ctrl-C as soon as the session, settling at exit, says it waits to cancel.
            def emit(self, record):
                super().emit(record)
                if threading.current_thread() is not threading.main_thread():
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        logging.getLogger("platfone_async").addHandler(CtrlC())
        client = Platfone(API_KEY, base_url=BASE_URL)
        session = client.activation("whatsapp", "uk").__enter__()
        print(json.dumps([session.activation.activation_id, session.activation.phone]))
        end()
        """,
    )
    assert 0 == ended.returncode, ended.stderr
    assert ended.exit_seconds < _exit.LEAVE_SECONDS
    activation_id, phone = ended.json()
    assert "active" == _get(control, "activation", activation_id=activation_id)["activation_status"]
    assert any(phone in line and "expire at" in line for line in ended.stderr.splitlines()), (
        ended.stderr
    )
    assert "Traceback" not in ended.stderr


def test_a_forked_child_exits_at_once(served: Served, control: httpx.Client) -> None:
    """A child forked from a process whose client (and an iterator) is open has no loop
    to close: its exit does not wait for one, and the parent's client still works."""
    ended = run(
        served,
        """
        import os

        client = Platfone(API_KEY, base_url=BASE_URL)
        client.create_activation("telegram", "uk")
        history = client.iter_activation_history()
        next(history)
        child = os.fork()
        if child == 0:
            end()
        else:
            os.waitpid(child, 0)
            print(json.dumps(client.get_balance().reserved))
        """,
    )
    assert 0 == ended.returncode, ended.stderr
    assert 0 < ended.json()
    assert ended.exit_seconds < EXIT_SECONDS


def test_a_thread_still_running_keeps_its_client(served: Served, control: httpx.Client) -> None:
    """A non-daemon thread that uses the client after the main thread has ended (waiting
    for it): its calls still work, and the process then exits."""
    ended = run(
        served,
        """
        client = Platfone(API_KEY, base_url=BASE_URL)
        ready = threading.Event()

        def work():
            client.get_balance()
            ready.set()
            threading.main_thread().join()
            print(json.dumps(client.get_balance().total), flush=True)

        threading.Thread(target=work).start()
        ready.wait()
        end()
        """,
    )
    assert (0, "") == (ended.returncode, ended.stderr)
    assert 10000 == ended.json()
    assert ended.exit_seconds < EXIT_SECONDS
