"""What the command prints for a person: tables on a terminal (rich, the ``cli``
extra), aligned plain lines on a pipe and on the base install, colour only on a terminal
and never with ``NO_COLOR`` or ``--no-color``; dollars, ``+`` phones, times with their
zone; one JSON shape per command."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import sys

import attrs
import pytest

from platfone_async.cli import amain
from platfone_async.cli._output import dollars, local_time
from platfone_async.testing import Country, Offer, PlatfoneEmulator, Service, VirtualClock

ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOX = re.compile("[┏┃┡│└━─]")


class Terminal(io.StringIO):
    """A stream that says it is a terminal (as a pty does)."""

    def isatty(self) -> bool:
        return True


@attrs.frozen
class Shown:
    code: int
    out: str
    err: str


@attrs.define
class Cli:
    emulator: PlatfoneEmulator
    clock: VirtualClock

    async def __call__(self, *argv: str, terminal: bool = False) -> Shown:
        out, err = (Terminal(), Terminal()) if terminal else (io.StringIO(), io.StringIO())
        async with self.clock.autojump():
            code = await amain(
                ["--base-url", self.emulator.base_url, "--api-key", self.emulator.api_key, *argv],
                stdout=out,
                stderr=err,
                http_client=self.emulator.http_client(),
                clock=self.clock,
                limits_backend=None,  # in memory: a SQLite file's threads would let time jump
            )
        return Shown(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The command against an emulator on a virtual clock, colour allowed by the
    environment (a colour terminal, no ``NO_COLOR``)."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock)
    emulator.catalog.add_country(Country("ci", "Côte d'Ivoire", ("225",), alt_name="Ivory Coast"))
    emulator.catalog.add_service(Service("risky", "Risky Bank", has_warning=True))
    emulator.catalog.add_service(Service("quiet", "Quiet Mail"))
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=173)])
    return Cli(emulator, clock)


@pytest.fixture
def without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """The base install: ``import rich`` fails."""
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)


def _plain_rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()[1:]]


@pytest.mark.anyio
async def test_a_table_on_a_terminal_is_rich_and_on_a_pipe_aligned_plain_lines(cli: Cli) -> None:
    """The same rows: a box-drawn table on a terminal, plain aligned columns on a pipe."""
    shown = await cli("countries", "ivory", terminal=True)
    piped = await cli("countries", "ivory")
    assert BOX.search(shown.out)
    assert "Côte d'Ivoire" in ANSI.sub("", shown.out)
    assert not BOX.search(piped.out)
    assert not ANSI.search(piped.out)
    assert ["Countries matching 'ivory'", "id  name           codes"] == piped.out.splitlines()[:2]
    assert [["ci", "Côte d'Ivoire", "+225"]] == _plain_rows(piped.out)[1:]


@pytest.mark.anyio
@pytest.mark.usefixtures("without_rich")
async def test_the_base_install_prints_the_same_facts_as_plain_lines(cli: Cli) -> None:
    """Without rich, on a terminal too, every command prints (no exit 2): the table as
    aligned lines with the same cells, no colour."""
    shown = await cli("countries", "ivory", terminal=True)
    balance = await cli("balance", terminal=True)
    assert (0, 0) == (shown.code, balance.code)
    assert not BOX.search(shown.out)
    assert not ANSI.search(shown.out + balance.out)
    assert [["ci", "Côte d'Ivoire", "+225"]] == _plain_rows(shown.out)[1:]
    assert "Balance: $100.00 available ($100.00 total, $0.00 reserved)\n" == balance.out
    assert "rich" not in sys.modules or sys.modules["rich"] is None


@pytest.mark.anyio
async def test_errors_are_red_and_codes_bold_on_a_terminal(cli: Cli) -> None:
    """On a terminal an error is red on stderr and the SMS code bold; on a pipe neither
    has an escape sequence."""
    failed = await cli("price", "whatsap", "uk", terminal=True)
    failed_piped = await cli("price", "whatsap", "uk")
    ordered = await cli("order", "telegram", "uk", "--json")
    aid = json.loads(ordered.out)["activation_id"]
    cli.emulator.deliver_sms(aid, "482913")
    code = await cli("wait", aid, "--interval", "1", terminal=True)
    code_piped = await cli("wait", aid, "--interval", "1")
    assert 2 == failed.code
    assert "\x1b[1;31mplatfone price: unknown service 'whatsap'" in failed.err
    assert "\x1b[1mCode: 482913" in code.out
    assert not ANSI.search(failed_piped.err + code_piped.out)
    assert "Code: 482913" in code_piped.out


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color"])
async def test_no_color_and_the_flag_turn_colour_off_on_a_terminal(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """``NO_COLOR=1`` or ``--no-color``: no colour on a terminal, errors included."""
    flags = ["--no-color"] if how == "--no-color" else []
    if how == "NO_COLOR":
        monkeypatch.setenv("NO_COLOR", "1")
    failed = await cli(*flags, "price", "whatsap", "uk", terminal=True)
    table = await cli(*flags, "services", terminal=True)
    assert 2 == failed.code
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", failed.err + table.out)  # no colour
    assert "platfone price: unknown service 'whatsap'" in failed.err
    assert BOX.search(table.out)  # still a table


@pytest.mark.anyio
async def test_human_output_shows_dollars_plus_phones_and_zoned_times(cli: Cli) -> None:
    """Money in dollars, the number with ``+``, expiry and creation with the zone; the
    JSON of the same activation keeps cents and the API's phone."""
    ordered = await cli("order", "telegram", "uk")
    as_json = json.loads((await cli("history", "--json")).out)["items"][0]
    listed = await cli("history")
    zone = dt.datetime.now().astimezone().strftime("%Z")
    assert 173 == as_json["price"]
    assert not as_json["phone"].startswith("+")
    assert f"+{as_json['phone']}" in ordered.out
    assert "$1.73" in ordered.out
    # The virtual clock's day is not today: the date is shown too.
    assert re.search(rf"expires  2026-01-01 00:20 {zone} \(in 20m 0s\)", ordered.out), ordered.out
    row = _plain_rows(listed.out)[1]
    assert [as_json["activation_id"], f"+{as_json['phone']}", "telegram/uk", "$1.73"] == row[:4]
    assert row[-1].endswith(f" {zone}")


def test_a_time_has_its_date_when_not_today_and_always_its_zone() -> None:
    """``14:02:03 UTC`` today, ``2026-12-03 14:02 UTC`` another day."""
    moment = dt.datetime(2026, 12, 3, 14, 2, 3, tzinfo=dt.timezone.utc).astimezone()
    zone = moment.strftime("%Z")
    assert f"{moment:%H:%M:%S} {zone}" == local_time(moment, today=moment.date())
    other_day = moment.date() + dt.timedelta(days=1)
    assert f"{moment:%Y-%m-%d %H:%M} {zone}" == local_time(moment, today=other_day)


def test_money_is_dollars_with_cents() -> None:
    """Cents become dollars with two decimals and thousands separators."""
    assert ["$0.05", "$1.73", "$1,234.50", "-$0.20"] == [dollars(c) for c in (5, 173, 123450, -20)]


@pytest.mark.anyio
async def test_a_page_has_one_shape_and_all_streams_json_lines(cli: Cli) -> None:
    """``history --json`` and ``reports --json`` are ``{"items", "page", "limit", "pages",
    "total"}``; ``--all --json`` prints one item per line."""
    for _ in range(3):
        await cli("order", "telegram", "uk", "--json")
    page = json.loads((await cli("history", "--limit", "2", "--json")).out)
    every = (await cli("history", "--all", "--json")).out.splitlines()
    reports = json.loads((await cli("reports", "--json")).out)
    assert ["items", "limit", "page", "pages", "total"] == sorted(page)
    assert (2, 2, 3) == (len(page["items"]), page["pages"], page["total"])
    assert ["items", "limit", "page", "pages", "total"] == sorted(reports)
    assert 3 == len(every)
    assert all("activation_id" in json.loads(line) for line in every)


@pytest.mark.anyio
async def test_services_flag_warnings_and_service_shows_them(cli: Cli) -> None:
    """``services --warnings`` lists the services with a warning; ``service ID`` says
    what the API tells about one, and points at it from the list."""
    flagged = await cli("services", "--warnings")
    flagged_json = json.loads((await cli("services", "--warnings", "--json")).out)
    one = await cli("service", "risky bank")
    plain = await cli("service", "quiet")
    as_json = json.loads((await cli("service", "risky", "--json")).out)
    ids = [row[0] for row in _plain_rows(flagged.out)[1:]]
    assert "risky" in ids
    assert ids == [s["service_id"] for s in flagged_json]
    assert all(s["has_warning"] for s in flagged_json)
    assert "quiet" not in ids
    assert "platfone service ID" in flagged.err
    assert one.out.startswith("Risky Bank (risky)\n")
    assert re.search(r"warning\s+yes", one.out)
    assert re.search(r"warning\s+none", plain.out)
    assert {"service_id": "risky", "has_warning": True} == {
        k: as_json[k] for k in ("service_id", "has_warning")
    }


@pytest.mark.anyio
async def test_order_without_wait_says_what_to_run_next(cli: Cli) -> None:
    """``order`` without ``--wait`` ends with the next commands for that activation."""
    ordered = await cli("order", "telegram", "uk")
    as_json = await cli("order", "telegram", "uk", "--json")
    aid = re.search(r"Ordered (\w+):", ordered.out)
    assert aid is not None
    assert f"next: platfone wait {aid.group(1)}" in ordered.err
    assert f"platfone cancel {aid.group(1)}" in ordered.err
    assert "" == as_json.err
