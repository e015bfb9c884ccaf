"""The ``platfone`` command in-process, through its entry point (``cli.amain``), against
the emulator on a virtual clock: ``--json`` output parsed and checked against the
emulator's own state; names; exit codes and stderr."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import anyio
import attrs
import pytest

from platfone_async import SANDBOX_URL
from platfone_async.cli import amain
from platfone_async.cli._commands import HANDLERS
from platfone_async.cli._interrupt import Interrupts
from platfone_async.testing import (
    Country,
    Offer,
    PlatfoneEmulator,
    Service,
    SmsPolicy,
    VirtualClock,
)


@attrs.frozen
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


@attrs.define
class Cli:
    """The command wired to one emulator (in-process transport, its virtual clock)."""

    emulator: PlatfoneEmulator
    clock: VirtualClock

    def argv(self, api_key: str | None = None) -> list[str]:
        """The global options that reach the emulator."""
        key = self.emulator.api_key if api_key is None else api_key
        return ["--base-url", self.emulator.base_url, "--api-key", key]

    async def __call__(self, *argv: str, api_key: str | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        key = self.emulator.api_key if api_key is None else api_key
        code = await amain(
            ["--base-url", self.emulator.base_url, "--api-key", key, *argv],
            stdout=out,
            stderr=err,
            http_client=self.emulator.http_client(),
            clock=self.clock,
            limits_backend=None,  # in memory: a SQLite file's threads would let time jump
        )
        return Run(code, out.getvalue(), err.getvalue())


def _emulator(clock: VirtualClock, sms_delay: float | None = None) -> PlatfoneEmulator:
    emulator = PlatfoneEmulator(
        clock=clock, sms_policy=None if sms_delay is None else SmsPolicy(delay=sms_delay)
    )
    emulator.catalog.add_country(Country("ci", "Côte d'Ivoire", ("225",), alt_name="Ivory Coast"))
    emulator.catalog.add_service(Service("mail1", "Mail"))
    emulator.catalog.add_service(Service("mail2", "Mail"))
    emulator.catalog.add_service(Service("casino", "Casino", prohibited=True))
    emulator.catalog.set_offers("google", "ci", [Offer(price=30)])
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=120, retriable=True)])
    return emulator


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock: the waits below take no real time."""
    return VirtualClock()


@pytest.mark.anyio
async def test_catalog_and_prices_as_json_match_the_emulator(clock: VirtualClock) -> None:
    """balance, countries, services, popular, price and prices print the API's JSON."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        balance = await cli("balance", "--json")
        countries = await cli("--json", "countries")
        united = await cli("countries", "united", "--json")
        services = await cli("services", "--json")
        gmail = await cli("services", "gmail", "--json")
        popular = await cli("popular", "--json")
        price = await cli("price", "WhatsApp", "united kingdom", "--json")
        by_country = await cli("prices", "--country", "Ivory Coast", "--json")
        by_service = await cli("prices", "--service", "telegram", "--json")
    assert {0} == {
        r.code for r in (balance, countries, united, services, gmail, popular, price, by_country)
    }
    assert {"total": 10_000, "reserved": 0} == balance.json()
    assert list(emulator.catalog.countries) == [c["country_id"] for c in countries.json()]
    assert {"uk", "us", "us_v"} == {c["country_id"] for c in united.json()}
    assert "casino" not in [s["service_id"] for s in services.json()]
    assert len(emulator.catalog.services) - 1 == len(services.json())
    assert ["google"] == [s["service_id"] for s in gmail.json()]
    assert emulator.catalog.popular == [s["service_id"] for s in popular.json()]
    assert emulator.catalog.price_info("whatsapp", "uk") == price.json()
    assert ["ci"] == [c["country_id"] for c in by_country.json()]
    assert ["google"] == [s["service_id"] for s in by_country.json()[0]["services"]]
    countries_of_telegram = {c["country_id"] for c in by_service.json()[0]["countries"]}
    assert {"uk"} <= countries_of_telegram


@pytest.mark.anyio
async def test_an_activation_from_order_to_finalize(clock: VirtualClock) -> None:
    """order (by names), get, retry, finalize, cancel and history, as the emulator sees them."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        ordered = await cli("order", "Google", "ivory coast", "--max-price", "50", "--json")
        aid = ordered.json()["activation_id"]
        got = await cli("get", aid, "--json")
        telegram = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        emulator.deliver_sms(telegram, "111111")
        retried = await cli("retry", telegram, "--json")
        emulator.deliver_sms(telegram, "222222")
        finalized = await cli("finalize", telegram, "--json")
        emulator.advance(121)  # past cancelable_after
        cancelled = await cli("cancel", aid, "--json")
        history = await cli("history", "--limit", "1", "--json")
        everything = await cli("history", "--all", "--json")
    assert {0} == {r.code for r in (ordered, got, retried, finalized, cancelled, history)}
    state = emulator.activation(aid)
    assert ("google", "ci") == (state["service_id"], state["country_id"])
    assert ordered.json()["phone"] == state["phone"]
    assert "smsRequested" == got.json()["sms_status"]
    assert "retryRequested" == retried.json()["sms_status"]
    assert "finalized" == finalized.json()["activation_status"]
    assert "222222" == finalized.json()["sms_code"]
    assert "finalized" == emulator.activation(telegram)["activation_status"]
    assert "canceled" == cancelled.json()["activation_status"] == state_after(emulator, aid)
    page = history.json()
    assert (1, 1, 2, 2) == (page["page"], page["limit"], page["pages"], page["total"])
    assert [telegram] == [a["activation_id"] for a in page["items"]]
    assert {aid, telegram} == {a["activation_id"] for a in everything.lines()}  # JSON Lines


def state_after(emulator: PlatfoneEmulator, activation_id: str) -> str:
    return str(emulator.activation(activation_id)["activation_status"])


@pytest.mark.anyio
async def test_reports_and_limits(clock: VirtualClock, tmp_path: Any) -> None:
    """reasons, report (with evidence), report-status, reports; limits hides the key."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    evidence = tmp_path / "screen.png"
    evidence.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    async with clock.autojump():
        aid = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        emulator.deliver_sms(aid, "123456")
        reasons = await cli("reasons", aid, "--json")
        reason_id = str(reasons.json()[0]["reason_id"])
        filed = await cli(
            "report", aid, reason_id, "--message", "wrong code", "--evidence", str(evidence)
        )
        filed_json = await cli("report-status", aid, "--json")
        page = await cli("reports", "--json")
        every = await cli("reports", "--all", "--json")
        limits = await cli("limits", "--json")
    assert {0} == {r.code for r in (reasons, filed, filed_json, page, every, limits)}
    report = emulator.report(aid)
    assert report is not None
    assert "wrong code" == report["message"] == filed_json.json()["message"]
    assert evidence.read_bytes() == report["evidence"]
    assert int(reason_id) == filed_json.json()["reason_id"]
    assert [aid] == [r["activation"]["activation_id"] for r in page.json()["items"]]
    assert [aid] == [r["activation"]["activation_id"] for r in every.lines()]  # JSON Lines
    state = limits.json()
    assert {"create_activation", "get_balance"} <= set(state["limiters"])
    assert emulator.api_key not in limits.out


@pytest.mark.anyio
async def test_order_wait_prints_json_lines_and_finalizes(clock: VirtualClock) -> None:
    """order --wait --json: one line per state (requested, received, finalized); exit 0."""
    emulator = _emulator(clock, sms_delay=30)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        run = await cli("order", "telegram", "uk", "--wait", "--json")
    states = run.lines()
    assert 0 == run.code
    assert ["smsRequested", "smsReceived", "smsReceived"] == [s["sms_status"] for s in states]
    assert "finalized" == states[-1]["activation_status"]
    assert "finalized" == state_after(emulator, states[0]["activation_id"])
    assert states[1]["sms_code"] == emulator.activation(states[0]["activation_id"])["sms_code"]
    assert "finalized +" in run.err


@pytest.mark.anyio
async def test_order_wait_shows_the_code_to_a_person(clock: VirtualClock) -> None:
    """Without --json: the order, the plain progress lines (not a terminal), the code."""
    emulator = _emulator(clock, sms_delay=30)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        run = await cli("order", "telegram", "uk", "--wait")
    code = emulator.activations()[0]["sms_code"]
    assert 0 == run.code
    assert run.out.startswith("Ordered ")
    assert f"Code: {code}" in run.out
    assert f"code {code}" in run.err
    assert "\r" not in run.err


@pytest.mark.anyio
async def test_order_wait_timeout_cancels_and_exits_3(clock: VirtualClock) -> None:
    """--timeout with no SMS: the number is cancelled (once it may be), said so, exit 3."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        run = await cli("order", "telegram", "uk", "--wait", "--timeout", "30", "--json")
    states = run.lines()
    assert 3 == run.code
    assert "canceled" == states[-1]["activation_status"]
    assert "canceled" == state_after(emulator, states[0]["activation_id"])
    assert "Ctrl-C to leave it to expire" in run.err  # the wait for cancelable_after
    assert "cancelled +" in run.err
    assert "within 30 s" in run.err


@pytest.mark.anyio
async def test_wait_shows_the_code_or_leaves_the_number_alone(clock: VirtualClock) -> None:
    """wait ID: the code (exit 0); no SMS before --timeout: exit 3, the number untouched."""
    emulator = _emulator(clock, sms_delay=30)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        aid = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        got = await cli("wait", aid, "--json")
        emulator.set_sms_policy(None)
        other = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        late = await cli("wait", other, "--timeout", "5")
    assert 0 == got.code
    assert emulator.activation(aid)["sms_code"] == got.lines()[-1]["sms_code"]
    assert 3 == late.code
    assert f"platfone cancel {other}" in late.err
    assert "active" == state_after(emulator, other)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("price", "whatsap", "uk"),
            "unknown service 'whatsap'; did you mean: whatsapp (WhatsApp)",
        ),
        (("price", "whatsapp", "united"), "unknown country 'united'; did you mean: uk (United"),
        (("price", "mail", "uk"), "'mail' may be any of these service ids - pick one: mail1"),
        (("price", "zzzzzzzz", "uk"), "no service matches 'zzzzzzzz' (see: platfone services)"),
        (("order", "casino", "uk"), "no service matches 'casino'"),
        (("order", "telegram", "uk", "--max-price", "90", "--price-ceiling", "80"), "above"),
        (("order", "telegram", "uk", "--timeout", "60"), "--timeout goes with --wait"),
        (("history", "--limit", "60"), "limit"),
    ],
)
async def test_names_that_name_nothing_fail_with_suggestions(
    clock: VirtualClock, argv: tuple[str, ...], message: str
) -> None:
    """A name that is unknown, misspelt, ambiguous or prohibited: exit 2, no order."""
    emulator = _emulator(clock)
    async with clock.autojump():
        run = await Cli(emulator, clock)(*argv)
    assert 2 == run.code
    assert message in run.err
    assert 0 == emulator.orders_placed()


@pytest.mark.anyio
async def test_api_errors_exit_1_with_the_error_name(clock: VirtualClock) -> None:
    """A wrong key and an unknown activation: exit 1, errorName on stderr, key never shown."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        wrong = await cli("balance", api_key="not-a-key-1234")
        missing = await cli("get", "0123456789abcdef01234567")
    assert (1, 1) == (wrong.code, missing.code)
    assert "UnauthorizedException" in wrong.err
    assert "not-a-key-1234" not in wrong.err + wrong.out
    assert "platfone get: " in missing.err
    assert "" == missing.out


@pytest.mark.anyio
async def test_usage_errors_exit_2(
    clock: VirtualClock, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown option, a missing argument, no API key at all: exit 2 and why."""
    monkeypatch.delenv("PLATFONE_API_KEY", raising=False)
    unknown = await amain(["balance", "--bogus"])
    missing = await amain(["price", "telegram"])
    bad_number = await amain(["history", "--limit", "0"])
    err = capsys.readouterr().err
    out, errors = io.StringIO(), io.StringIO()
    no_key = await amain(["balance"], stdout=out, stderr=errors)
    assert (2, 2, 2, 2) == (unknown, missing, bad_number, no_key)
    assert "unrecognized arguments: --bogus" in err
    assert "the following arguments are required: COUNTRY" in err
    assert "must be >= 1" in err
    assert "PLATFONE_API_KEY" in errors.getvalue()


@pytest.mark.anyio
async def test_help_shows_an_example_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """--help on a subcommand exits 0 with an example and the documented exit codes."""
    code = await amain(["order", "--help"])
    out = capsys.readouterr().out
    assert 0 == code
    assert "example:\n  platfone order telegram uk" in out
    assert "3 no SMS in time" in out


@pytest.mark.anyio
async def test_human_output_uses_dollars_and_tables(clock: VirtualClock) -> None:
    """balance and price in dollars and cents; countries as a table with full names."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        balance = await cli("balance", "--no-color")
        price = await cli("price", "whatsapp", "uk")
        countries = await cli("countries", "ivory")
    suggested = emulator.catalog.price_info("whatsapp", "uk")["price"]["suggested"]  # type: ignore[index]
    assert "Balance: $100.00 available ($100.00 total, $0.00 reserved)\n" == balance.out
    assert price.out.startswith(f"WhatsApp in United Kingdom: ${suggested / 100:.2f} suggested")
    assert "Côte d'Ivoire" in countries.out
    assert "+225" in countries.out


async def _interrupted(cli: Cli, after: float, *argv: str) -> Run:
    """``argv`` cancelled ``after`` virtual seconds in (Ctrl-C under ``asyncio.run``)."""
    out, err = io.StringIO(), io.StringIO()

    async def interrupt(scope: anyio.CancelScope) -> None:
        await cli.clock.sleep(after)
        scope.cancel()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(interrupt, scope)
            await amain(
                ["--base-url", cli.emulator.base_url, "--api-key", cli.emulator.api_key, *argv],
                stdout=out,
                stderr=err,
                http_client=cli.emulator.http_client(),
                clock=cli.clock,
                limits_backend=None,  # in memory: a SQLite file's threads would let time jump
            )
    return Run(-1, out.getvalue(), err.getvalue())


@pytest.mark.anyio
async def test_interrupting_order_wait_cancels_and_says_so(clock: VirtualClock) -> None:
    """Interrupted when the number may be cancelled at once: cancelled, and said so."""
    emulator = _emulator(clock)
    emulator.catalog.set_offers("telegram", "uk", [Offer(price=120, cancel_after=0)])
    async with clock.autojump():
        run = await _interrupted(Cli(emulator, clock), 5, "order", "telegram", "uk", "--wait")
    (state,) = emulator.activations()
    assert "canceled" == state["activation_status"]
    assert f"cancelled +{state['phone']}; its reserved price is released" in run.err
    assert "- interrupted" in run.err


@pytest.mark.anyio
async def test_interrupting_wait_leaves_the_number_and_says_how_to_cancel(
    clock: VirtualClock,
) -> None:
    """``wait ID`` did not open the number: interrupted, it leaves it and says so."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        aid = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        run = await _interrupted(cli, 5, "wait", aid)
    assert "active" == state_after(emulator, aid)
    assert f"stopped waiting; +{emulator.activation(aid)['phone']} is still active" in run.err
    assert f"its price stays reserved until then - platfone cancel {aid} releases it" in run.err


@pytest.mark.anyio
async def test_an_sms_text_is_printed_as_is(clock: VirtualClock) -> None:
    """Text from the wire is never read as markup: brackets in an SMS come out as sent."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        aid = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        emulator.deliver_sms(aid, "123456", text="code [/] is [bold]123456[/bold]")
        shown = await cli("get", aid)
        listed = await cli("history")
    assert 0 == shown.code
    assert "'code [/] is [bold]123456[/bold]'" in shown.out
    assert "123456" in listed.out


@pytest.mark.anyio
@pytest.mark.parametrize("command", [*HANDLERS, "demo"])
async def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``platfone COMMAND --help`` exits 0 and shows an example of that command."""
    code = await amain([command, "--help"])
    out = capsys.readouterr().out
    assert 0 == code
    assert f"example:\n  platfone {command}" in out


@pytest.mark.anyio
async def test_verbose_logs_each_request_to_stderr_without_the_key(clock: VirtualClock) -> None:
    """-vv: a line per request on stderr; the API key is never among them."""
    emulator = _emulator(clock)
    async with clock.autojump():
        run = await Cli(emulator, clock)("-vv", "balance", "--json")
    assert 0 == run.code
    assert "/user/balance" in run.err
    assert emulator.api_key not in run.err


@pytest.mark.anyio
async def test_the_api_root_comes_from_sandbox_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--sandbox picks the sandbox URL; $PLATFONE_BASE_URL and $PLATFONE_API_KEY are read."""
    monkeypatch.setenv("PLATFONE_API_KEY", "from-env")
    sandbox, from_env = io.StringIO(), io.StringIO()
    assert 0 == await amain(["--sandbox", "limits", "--json"], stdout=sandbox)
    monkeypatch.setenv("PLATFONE_BASE_URL", "http://127.0.0.1:9/api/v1")
    assert 0 == await amain(["limits", "--json"], stdout=from_env)
    assert SANDBOX_URL == json.loads(sandbox.getvalue())["base_url"]
    assert "http://127.0.0.1:9/api/v1" == json.loads(from_env.getvalue())["base_url"]


@pytest.mark.anyio
async def test_a_price_ceiling_continues_the_same_order_at_the_suggested_price(
    clock: VirtualClock,
) -> None:
    """--max-price below the market with --price-ceiling above it: one order, at the
    suggested price; without the ceiling: exit 1 with the 409's errorName, no order."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        capped = await cli("order", "telegram", "uk", "--max-price", "50", "--json")
        placed = await cli(
            "order", "telegram", "uk", "--max-price", "50", "--price-ceiling", "150", "--json"
        )
    assert 1 == capped.code
    assert "MaxPriceExceededException" in capped.err
    assert 0 == placed.code, placed.err
    assert 120 == placed.json()["price"]
    assert "no number at $0.50; ordering at $1.20" in placed.err
    assert 1 == emulator.orders_placed()


@pytest.mark.anyio
async def test_offers_ranks_the_countries_that_sell_a_service(clock: VirtualClock) -> None:
    """``offers`` prints the SDK's ranking (candidates by name, a preference, a ceiling, a
    limit) as JSON in cents, or as a table in dollars with the command to order the best;
    nothing is ordered."""
    emulator = _emulator(clock)
    emulator.set_offer("google", "uk", price=90, quality=0.9, count=5)
    emulator.set_offer("google", "de", price=40, quality=0.3, count=5)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        cheapest = await cli("offers", "Gmail", "united kingdom", "de", "ci", "--prefer", "price")
        capped = await cli("--json", "offers", "google", "uk", "de", "ci", "--price-ceiling", "50")
        best = await cli("offers", "google", "uk", "de", "ci", "--limit", "1", "--json")
        everywhere = await cli("offers", "google", "--json")
        unknown = await cli("offers", "google", "atlantis")
    assert {0} == {r.code for r in (cheapest, capped, best, everywhere)}
    rows = [
        line.split()
        for line in cheapest.out.splitlines()
        if line.split()[:1] in (["1"], ["2"], ["3"])
    ]
    assert [["1", "ci", "$0.30"], ["2", "de", "$0.40"], ["3", "uk", "$0.90"]] == [
        r[:3] for r in rows
    ]
    assert "next: platfone order google ci --wait" in cheapest.err
    assert [("ci", 30), ("de", 40)] == sorted((o["country_id"], o["price"]) for o in capped.json())
    assert ["ci"] == [o["country_id"] for o in best.json()]  # 0.5 at 30: the most per cent
    in_stock = {
        country_id
        for country_id in emulator.catalog.countries
        if any(o.count > 0 for o in emulator.catalog.offers("google", country_id))
    }
    assert in_stock == {o["country_id"] for o in everywhere.json()}
    assert 2 == unknown.code
    assert 0 == emulator.orders_placed()


@pytest.mark.anyio
@pytest.mark.parametrize("json_mode", [False, True])
async def test_a_code_after_the_timeout_is_printed_and_exits_0(
    clock: VirtualClock, json_mode: bool
) -> None:
    """order --wait --timeout 2, the SMS at 4 s (cancel only after 2 min): the code is
    printed as an in-time one (stdout; the last JSON line), noted on stderr as late,
    the number finalized, exit 0."""
    emulator = _emulator(clock, sms_delay=4)
    cli = Cli(emulator, clock)
    json_flag = ("--json",) if json_mode else ()
    async with clock.autojump():
        run = await cli("order", "telegram", "uk", "--wait", "--timeout", "2", *json_flag)
    (state,) = emulator.activations()
    assert 0 == run.code, run.err
    assert "finalized" == state["activation_status"]
    if json_mode:
        last = run.lines()[-1]
        assert (state["sms_code"], "finalized") == (last["sms_code"], last["activation_status"])
    else:
        assert f"Code: {state['sms_code']}" in run.out
    assert f"the code came after the --timeout; +{state['phone']}: billed for it" in run.err
    assert "within 2 s" not in run.err


@pytest.mark.anyio
async def test_a_code_after_an_interruption_is_printed(clock: VirtualClock) -> None:
    """Interrupted at 2 s, the SMS at 4 s while the session waits to cancel: the code is
    printed, noted as late, and the number finalized (the session's own notice says so)."""
    emulator = _emulator(clock, sms_delay=4)
    async with clock.autojump():
        run = await _interrupted(Cli(emulator, clock), 2, "order", "telegram", "uk", "--wait")
    (state,) = emulator.activations()
    assert "finalized" == state["activation_status"]
    assert f"Code: {state['sms_code']}" in run.out
    assert f"the code came after the interruption; +{state['phone']}: billed" in run.err
    assert f"finalized +{state['phone']} (it got its SMS: {state['sms_code']})" in run.err
    assert "released" not in run.err.split("came after")[-1]


@pytest.mark.anyio
async def test_a_timeout_with_no_code_at_all_still_exits_3(clock: VirtualClock) -> None:
    """No SMS ever: the cancel comes, nothing is printed as a code, exit 3."""
    emulator = _emulator(clock)
    async with clock.autojump():
        run = await Cli(emulator, clock)("order", "telegram", "uk", "--wait", "--timeout", "2")
    assert 3 == run.code
    assert "Code:" not in run.out
    assert "came after" not in run.err


@pytest.mark.anyio
@pytest.mark.parametrize("json_mode", [False, True])
async def test_wait_prints_a_code_that_came_after_its_last_poll(
    clock: VirtualClock, json_mode: bool
) -> None:
    """wait ID --interval 10 --timeout 15, the SMS at 12 s (between the polls at 10 and
    20): the last read finds it - printed as an in-time code, noted as late, with what
    the server shows (billed, still active: finalize is left to the caller); exit 0."""
    emulator = _emulator(clock, sms_delay=12)
    cli = Cli(emulator, clock)
    json_flag = ("--json",) if json_mode else ()
    async with clock.autojump():
        aid = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        run = await cli("wait", aid, "--interval", "10", "--timeout", "15", *json_flag)
    state = emulator.activation(aid)
    assert 0 == run.code, run.err
    if json_mode:
        assert state["sms_code"] == run.lines()[-1]["sms_code"]
    else:
        assert f"Code: {state['sms_code']}" in run.out
    assert f"the code came after the --timeout; +{state['phone']}: billed for it" in run.err
    assert f"+{state['phone']} is still active until " in run.err.split("came after")[-1]
    assert (
        f"its SMS came and was billed (code {state['sms_code']}) - platfone finalize {aid}"
        in run.err
    )
    assert ("active", "billed") == (state["activation_status"], state["billing_status"])
    assert "within 15 s" not in run.err


@pytest.mark.anyio
async def test_wait_without_a_code_says_the_price_stays_reserved_or_how_it_ended(
    clock: VirtualClock,
) -> None:
    """No SMS: after --timeout, still active with its price reserved, and when it may be
    cancelled (exit 3); waited on until it expires, expired and released (exit 3)."""
    emulator = _emulator(clock)
    cli = Cli(emulator, clock)
    async with clock.autojump():
        aid = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        timed_out = await cli("wait", aid, "--timeout", "5")
        expired = await cli("wait", aid)
    phone = emulator.activation(aid)["phone"]
    assert (3, 3) == (timed_out.code, expired.code)
    assert re.search(
        rf"\+{phone} is still active until .+; its price stays reserved until then - "
        rf"platfone cancel {aid} releases it from ",
        timed_out.err,
    ), timed_out.err
    assert f"+{phone} is expired (billing released)" in expired.err
    assert "Code:" not in timed_out.out + expired.out


@pytest.mark.anyio
async def test_wait_interrupted_prints_a_code_that_came_meanwhile_and_exits_130(
    clock: VirtualClock,
) -> None:
    """Ctrl-C at 15 s, the SMS at 12 s, unseen (polls 10 s apart): the last read finds
    it - printed, noted as after the interruption; the number left as it is; exit 130."""
    emulator = _emulator(clock, sms_delay=12)
    cli = Cli(emulator, clock)
    interrupts = Interrupts()
    out, err = io.StringIO(), io.StringIO()

    async def press() -> None:
        await clock.sleep(15)
        interrupts.press()

    async with clock.autojump():
        aid = (await cli("order", "telegram", "uk", "--json")).json()["activation_id"]
        async with anyio.create_task_group() as tg:
            tg.start_soon(press)
            code = await amain(
                [*cli.argv(), "wait", aid, "--interval", "10"],
                stdout=out,
                stderr=err,
                interrupts=interrupts,
                http_client=emulator.http_client(),
                clock=clock,
                limits_backend=None,
            )
    state = emulator.activation(aid)
    assert 130 == code, err.getvalue()
    assert f"Code: {state['sms_code']}" in out.getvalue()
    assert f"the code came after the interruption; +{state['phone']}" in err.getvalue()
    assert f"stopped waiting; +{state['phone']} is still active until " in err.getvalue()
    assert "active" == state["activation_status"]
