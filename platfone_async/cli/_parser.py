"""The ``platfone`` command's arguments (argparse: in the standard library, so that the
base install parses every command and ``demo`` runs without the ``cli`` extra).

Global options may come before the subcommand (as ``git -C`` does) or after it: each
subcommand's parser has them too, with defaults that do not override the ones given
before. ``--timeout`` is the one exception: after ``order`` and ``wait`` it is how long
to wait for the SMS; before any subcommand, the timeout of each request.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import textwrap
from collections.abc import Iterable
from typing import Any, NoReturn

import platfone_async

__all__ = ["EPILOG", "Parser", "build_parser", "version_line"]

EPILOG = """\
exit codes: 0 ok, 1 an API error (its errorName on stderr), 2 usage, 3 no SMS in time,
130 interrupted. The API key comes from --api-key or $PLATFONE_API_KEY; the API root
from --base-url or $PLATFONE_BASE_URL (e.g. the emulator's)."""


def version_line() -> str:
    """``platfone 0.4.0 (platfone-async, Python 3.11.7)``."""
    python = ".".join(str(part) for part in sys.version_info[:3])
    return f"platfone {platfone_async.__version__} (platfone-async, Python {python})"


def suggest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices ``word`` may be a misspelling of, closest first."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)


class Parser(argparse.ArgumentParser):
    """argparse, with "did you mean" for a misspelt command or option (as argparse
    does from Python 3.14 with ``suggest_on_error``; we run on 3.10 and later).

    ``commands`` maps each subcommand to its parser, so that an unknown option is
    matched against the options of the command it was given to.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is not None and isinstance(value, str) and value not in choices:
            close = suggest(value, [str(c) for c in choices])
            if close:
                kind = "command" if action.dest == "command" else "choice"
                maybe = " or ".join(repr(c) for c in close)
                raise argparse.ArgumentError(
                    action, f"unknown {kind} {value!r}; did you mean {maybe}?"
                )
        super()._check_value(action, value)

    def unrecognized(self, command: str | None, extra: list[str]) -> NoReturn:
        """Fail (exit 2) for arguments no parser took, suggesting the closest options."""
        known = set(self._option_string_actions)
        if command in self.commands:
            known |= set(self.commands[command]._option_string_actions)
        hints = []
        for word in extra:
            name = word.split("=", 1)[0]
            close = suggest(name, known, n=1) if name.startswith("--") else []
            if close:
                hints.append(f"{name}: did you mean {close[0]}?")
        message = f"unrecognized arguments: {' '.join(extra)}"
        parser = self.commands.get(command or "", self)  # its usage line, not the root's
        parser.error("; ".join([message, *hints]))


def _globals(*, suppress: bool, with_timeout: bool = True) -> Parser:
    """The global options; ``suppress``: as repeated after a subcommand."""
    parser = Parser(add_help=False)

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--api-key", default=default(None), help="API key (else $PLATFONE_API_KEY); never shown"
    )
    group.add_argument(
        "--sandbox", action="store_true", default=default(False), help="use the sandbox API"
    )
    group.add_argument(
        "--base-url", default=default(None), help="another API root, e.g. the emulator's"
    )
    group.add_argument(
        "--state",
        default=default(None),
        metavar="URL",
        help="where numbers opened are journaled: sqlite:///path or redis://... (else "
        "$PLATFONE_STATE_URL, else a file per key in $XDG_STATE_HOME/platfone-async)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="machine-readable output with the API's field names (JSON Lines while waiting)",
    )
    if with_timeout:
        group.add_argument(
            "--timeout",
            dest="request_timeout",
            type=float,
            default=default(30.0),
            metavar="S",
            help="seconds per request (30)",
        )
    group.add_argument(
        "--spend-limit",
        type=_spend_limit,
        default=default(None),
        metavar="CENTS/PERIOD",
        help="refuse an order that would take the money reserved or billed within PERIOD"
        " over CENTS (500/1h, 2000/1d)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="log to stderr (-v: info, -vv: every request)",
    )
    group.add_argument(
        "--no-color", action="store_true", default=default(False), help="plain text, no colors"
    )
    return parser


def _spend_limit(text: str) -> platfone_async.SpendLimit:
    try:
        return platfone_async.SpendLimit.parse(text)
    except platfone_async.InvalidParameterError as error:
        raise argparse.ArgumentTypeError(f"{text!r} {error.rule}") from None


def _example(text: str) -> str:
    return "example:\n" + textwrap.indent(text, "  ")


class _Commands:
    """Adds subcommands that share the global options and show an example."""

    def __init__(self, parser: Parser) -> None:
        self._root = parser
        self._sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        self._globals = _globals(suppress=True)
        self._globals_no_timeout = _globals(suppress=True, with_timeout=False)

    def add(
        self,
        name: str,
        summary: str,
        example: str,
        *,
        wait_timeout: bool = False,
        own_options: bool = False,
    ) -> argparse.ArgumentParser:
        parent = self._globals_no_timeout if wait_timeout else self._globals
        parser: argparse.ArgumentParser = self._sub.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=_example(example) + "\n\n" + EPILOG,
            parents=[] if own_options else [parent],
            add_help=not own_options,  # its --help is the emulator's own
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self._root.commands[name] = parser
        return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def build_parser() -> Parser:
    parser = Parser(
        prog="platfone",
        description="The Platfone Activation API from the command line: rent a number, "
        "get the SMS code.",
        epilog=_example("platfone order whatsapp 'United Kingdom' --wait") + "\n\n" + EPILOG,
        parents=[_globals(suppress=False)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="store_true", help="show the version of platfone and exit"
    )
    commands = _Commands(parser)
    commands.add("balance", "show the balance: total, reserved, available", "platfone balance")
    countries = commands.add(
        "countries", "list the countries (those matching QUERY)", "platfone countries king"
    )
    countries.add_argument("query", nargs="?", metavar="QUERY", help="an id or (part of) a name")
    services = commands.add(
        "services", "list the services (those matching QUERY)", "platfone services gmail"
    )
    services.add_argument("query", nargs="?", metavar="QUERY", help="an id or (part of) a name")
    services.add_argument(
        "--warnings", action="store_true", help="only the services with a warning"
    )
    service = commands.add(
        "service",
        "show one service: its names, whether it has a warning or a description",
        "platfone service whatsapp",
    )
    service.add_argument("service", metavar="SERVICE", help="an id or a name: telegram, WhatsApp")
    commands.add("popular", "list the popular services", "platfone popular")
    price = commands.add(
        "price",
        "price range, quality and stock of SERVICE in COUNTRY",
        "platfone price WhatsApp 'United Kingdom'",
    )
    _service_country(price)
    prices = commands.add(
        "prices", "prices of every service in a country, or of a service everywhere",
        "platfone prices --country uk\nplatfone prices --service telegram",
    )  # fmt: skip
    which = prices.add_mutually_exclusive_group()
    which.add_argument("--country", metavar="C", help="every service in this country")
    which.add_argument("--service", metavar="S", help="this service in every country")
    offers = commands.add(
        "offers",
        "rank the countries that sell SERVICE, best offer first (nothing is ordered)",
        "platfone offers telegram\nplatfone offers telegram uk de fr --prefer price",
    )
    offers.add_argument("service", metavar="SERVICE", help="an id or a name: telegram, WhatsApp")
    offers.add_argument(
        "countries", nargs="*", metavar="COUNTRY", help="the candidates (default: every country)"
    )
    offers.add_argument(
        "--prefer",
        choices=("balanced", "price", "quality"),
        default="balanced",
        help="cheapest first, best quality first, or quality per price (default)",
    )
    offers.add_argument(
        "--price-ceiling", type=_positive_int, metavar="N", help="cents; leave out dearer offers"
    )
    offers.add_argument("--limit", type=_positive_int, metavar="N", help="show the best N only")
    order = commands.add(
        "order",
        "order a number for SERVICE in COUNTRY, or at the best offer of several"
        " (--wait: hold it until the SMS comes)",
        "platfone order telegram uk --max-price 150 --wait --timeout 300\n"
        "platfone order telegram any --prefer price --price-ceiling 120 --wait",
        wait_timeout=True,
    )
    order.add_argument("service", metavar="SERVICE", help="an id or a name: telegram, WhatsApp")
    order.add_argument(
        "country",
        metavar="COUNTRY",
        help="an id or a name: uk, 'United Kingdom'; several, comma-separated (uk,de,fr),"
        " or 'any': the best offer among them (see offers), the next if one has no number",
    )
    order.add_argument(
        "--prefer",
        choices=("balanced", "price", "quality"),
        default="balanced",
        help="with several countries: cheapest first, best quality first, or quality per"
        " price (default)",
    )
    order.add_argument("--max-price", type=_positive_int, metavar="N", help="cents, first order")
    order.add_argument(
        "--price-ceiling",
        type=_positive_int,
        metavar="N",
        help="cents; follow a higher suggested price up to N",
    )
    order.add_argument("--quality", type=float, metavar="N", help="quality factor 0-100")
    order.add_argument(
        "--wait",
        action="store_true",
        help="wait for the SMS, show the code, finalize (cancel if none comes)",
    )
    _wait_timeout(order)
    get = commands.add("get", "show an activation", "platfone get 63f4d0dab040a865d80da08a")
    _activation_id(get)
    wait = commands.add(
        "wait",
        "wait for the SMS of an activation and show the code",
        "platfone wait 63f4d0dab040a865d80da08a --timeout 120",
        wait_timeout=True,
    )
    _activation_id(wait)
    _wait_timeout(wait)
    for name, summary in (
        ("retry", "ask for another SMS to the same number"),
        ("cancel", "cancel an activation that got no SMS"),
        ("finalize", "finalize an activation that got its SMS"),
        ("reasons", "the reasons a report may be filed for"),
        ("report-status", "show the report of an activation"),
    ):
        _activation_id(commands.add(name, summary, f"platfone {name} 63f4d0dab040a865d80da08a"))
    history = commands.add(
        "history", "past activations, newest first", "platfone history --limit 5"
    )
    history.add_argument("--limit", type=_positive_int, default=10, metavar="N", help="(10)")
    history.add_argument("--all", action="store_true", help="every page")
    report = commands.add(
        "report",
        "report a problem with an activation",
        "platfone report 63f4d0dab040a865d80da08a 1 --message 'no SMS came'",
    )
    _activation_id(report)
    report.add_argument("reason", type=_positive_int, metavar="REASON", help="a reason_id")
    report.add_argument("--message", metavar="M", help="what went wrong (1000 chars at most)")
    report.add_argument("--evidence", metavar="FILE", help="a screenshot, pdf, zip or video")
    reports = commands.add("reports", "your reports, newest first", "platfone reports --all")
    reports.add_argument("--all", action="store_true", help="every page")
    commands.add("limits", "the client-side rate-limit state", "platfone limits --json")
    recover = commands.add(
        "recover",
        "settle the numbers a run that ended left open (a killed order --wait): finalize "
        "those whose SMS came, printing each code, cancel the rest once allowed",
        "platfone recover",
    )
    recover.add_argument(
        "--interval", type=float, metavar="S", help="seconds between polls while it waits (10)"
    )
    commands.add(
        "open",
        "list the numbers opened and not settled yet (the journal), and who holds each",
        "platfone open",
    )
    demo = commands.add(
        "demo",
        "run a whole activation against an embedded emulator (no key, no network)",
        "platfone demo --sms-delay 1",
    )
    demo.add_argument(
        "--sms-delay", type=float, default=2.5, help="seconds until the SMS arrives (2.5)"
    )
    commands.add(
        "emulator",
        "serve the emulator over HTTP; every option after it goes to "
        "python -m platfone_async.testing serve (--host, --port, --api-key, --balance, "
        "--sms-delay, --seed, --no-rate-limits)",
        "platfone emulator --port 8080 --sms-delay 5",
        own_options=True,
    )
    return parser


def _service_country(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", metavar="SERVICE", help="an id or a name: telegram, WhatsApp")
    parser.add_argument("country", metavar="COUNTRY", help="an id or a name: uk, 'United Kingdom'")


def _activation_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("activation_id", metavar="ID", help="the activation id")


def _wait_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval",
        type=float,
        metavar="S",
        help="seconds between polls (default: 10, as the API asks, or what the server"
        " advertises: the emulator, 1)",
    )
    parser.add_argument(
        "--timeout",
        dest="wait_timeout",
        type=float,
        metavar="S",
        help="give up after S seconds (exit 3, unless a code still comes - while order"
        " --wait settles the number, or by wait's last read: printed, exit 0); default:"
        " until expire_at",
    )
