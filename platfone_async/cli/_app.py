"""The ``platfone`` command: parse, open a client, run one subcommand, map the outcome
to an exit code (0 ok, 1 an API error, 2 usage, 3 no SMS in time, 130 interrupted).

:func:`main` is the console script; :func:`amain` is the same on a running event loop
(the tests call it with the emulator's in-process transport and a virtual clock).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import runpy
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TextIO

import anyio
import attrs
import httpx

from platfone_async import (
    ActivationEndedError,
    APIConnectionError,
    APIError,
    AsyncPlatfone,
    AuthenticationError,
    Clock,
    InvalidParameterError,
    PlatfoneError,
    SystemClock,
    WaitTimeoutError,
)

from . import _commands
from ._interrupt import Interrupts
from ._output import MissingExtraError, Output
from ._parser import build_parser, version_line
from ._resolve import UsageError

__all__ = ["EXIT_API_ERROR", "EXIT_INTERRUPTED", "EXIT_NO_SMS", "EXIT_USAGE", "amain", "main"]

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE, EXIT_NO_SMS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

_NO_CLIENT = {"demo", "emulator"}
#: The commands that show the journal themselves (no notice of lapsed numbers).
_NO_NOTICE = {"open", "recover"}


#: The header in which a server may advertise how often to poll an activation (the
#: emulator does; the real API does not, and then a wait polls every 10 s as it asks).
POLL_HINT_HEADER = "x-poll-interval"
DEFAULT_INTERVAL = 10.0


@attrs.define
class PollHint:
    """The poll interval the server last advertised, if any (seen by an httpx hook)."""

    seconds: float | None = None

    async def observe(self, response: httpx.Response) -> None:
        text = response.headers.get(POLL_HINT_HEADER)
        if text is None:
            return
        try:
            value = float(text)
        except ValueError:
            return
        if 0.1 <= value <= 60.0:  # anything else is not a hint worth following
            self.seconds = value


@attrs.define
class Context:
    """What a subcommand needs: its arguments, the client, the output, the clock."""

    args: Any
    client: AsyncPlatfone
    out: Output
    clock: Clock
    hint: PollHint = attrs.Factory(PollHint)
    #: The Ctrl-C presses so far (what says the command was interrupted).
    interrupts: Interrupts = attrs.Factory(Interrupts)

    def now(self) -> float:
        return self.clock.time()

    def interval(self) -> float:
        """Seconds between polls: ``--interval``, else the server's hint, else 10."""
        if self.args.interval is not None:
            return float(self.args.interval)
        return self.hint.seconds or DEFAULT_INTERVAL


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``platfone``: run one subcommand, return its exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:  # --help and usage errors are printed here, before any event loop starts
        args, extra = build_parser().parse_known_args(arguments)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command == "emulator":  # uvicorn runs its own loop, in the main thread
        if not _importable("uvicorn"):
            missing = MissingExtraError("serving the emulator", "emulator")
            color = not args.no_color and not os.environ.get("NO_COLOR")
            out = Output(json_mode=False, color=color)
            return _fail(out, args, str(missing), EXIT_USAGE)
        return _serve_emulator(extra)
    try:
        return anyio.run(_console, arguments)
    except KeyboardInterrupt:  # (a Ctrl-C before SIGINT was taken, or trio's)
        return EXIT_INTERRUPTED


async def _console(arguments: list[str]) -> int:
    """:func:`amain` with SIGINT taken as the command's Ctrl-C (see ``_interrupt``)."""
    interrupts = Interrupts()
    async with interrupts.taking_sigint():
        with interrupts.running():  # (the command runs in its own, inside)
            return await amain(arguments, interrupts=interrupts)
    return EXIT_INTERRUPTED  # a Ctrl-C before the command ran, or in the demo


async def amain(
    argv: Sequence[str],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    interrupts: Interrupts | None = None,
    **client_options: Any,
) -> int:
    """:func:`main` on a running loop; ``client_options`` go to ``AsyncPlatfone``.

    ``interrupts``: where Ctrl-C is counted (``Interrupts.press()`` is one; by default
    none is): once pressed, the command exits 130 whatever exception its interrupted
    call ends with. A cancellation from outside stops it as well, and is raised.
    """
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(list(argv))
        if extra and args.command != "emulator":
            parser.unrecognized(args.command, extra)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0)
    out = Output(
        json_mode=bool(getattr(args, "json", False)),
        color=not args.no_color and not os.environ.get("NO_COLOR"),
        stdout=stdout,
        stderr=stderr,
    )
    if args.version:
        out.line(version_line())
        return EXIT_OK
    if args.command is None:
        parser.print_help(out.stdout)
        return EXIT_USAGE
    if args.command == "emulator":
        out.note("platfone emulator: run it as a command (it serves in the main thread)")
        return EXIT_USAGE
    with _logging(out, args.verbose):
        if args.command == "demo":
            return await _run_demo(out, args.sms_delay)
        return await _run_command(args, out, client_options, interrupts or Interrupts())


async def _run_command(
    args: Any, out: Output, client_options: dict[str, Any], interrupts: Interrupts
) -> int:
    """The command's exit code: 130 once Ctrl-C was pressed, whatever it ended with."""
    try:
        code = await _run(args, out, client_options, interrupts)
    except Exception as error:  # no API error: a call that Ctrl-C tore down (or a bug)
        if not interrupts.happened:
            raise
        out.note(f"platfone {args.command}: interrupted ({type(error).__name__}: {error})")
        return EXIT_INTERRUPTED
    return EXIT_INTERRUPTED if interrupts.happened else code


async def _run(
    args: Any, out: Output, client_options: dict[str, Any], interrupts: Interrupts
) -> int:
    handler: Callable[[Context], Awaitable[int]] = _commands.HANDLERS[args.command]
    base_url = args.base_url or os.environ.get("PLATFONE_BASE_URL") or None
    try:
        hint = PollHint()
        async with _client(args, base_url, client_options, hint) as client:
            clock = client_options.get("clock") or SystemClock()
            if args.command not in _NO_NOTICE:
                await _say_lapsed(client, out)
            with interrupts.running():
                return await handler(Context(args, client, out, clock, hint, interrupts))
            return EXIT_INTERRUPTED  # a Ctrl-C's cancellation ended it
    except InvalidParameterError as error:
        text = _key_problem(args, error) if error.parameter == "api_key" else str(error)
        return _fail(out, args, text, EXIT_USAGE)
    except (UsageError, MissingExtraError) as error:
        return _fail(out, args, str(error), EXIT_USAGE)
    except (WaitTimeoutError, ActivationEndedError) as error:
        return _fail(out, args, str(error), EXIT_NO_SMS)
    except AuthenticationError as error:
        name = error.error_name or f"HTTP {error.status_code}"
        text = f"{name}: {error.message}\n{_refused_key_hint(args, base_url)}"
        return _fail(out, args, text, EXIT_API_ERROR)
    except APIError as error:
        name = error.error_name or f"HTTP {error.status_code}"
        return _fail(out, args, f"{name}: {error.message}", EXIT_API_ERROR)
    except APIConnectionError as error:
        where = base_url or ("the sandbox" if args.sandbox else "the API")
        text = f"cannot reach {where}: {type(error).__name__}: {error}"
        return _fail(out, args, text, EXIT_API_ERROR)
    except PlatfoneError as error:
        return _fail(out, args, f"{type(error).__name__}: {error}", EXIT_API_ERROR)


def _fail(out: Output, args: Any, text: str, code: int) -> int:
    """The error on stderr (red on a terminal), its command first; return ``code``."""
    first, *rest = text.split("\n")
    out.note(f"platfone {args.command}: {first}", "error")
    for line in rest:
        out.note(f"  {line}")
    return code


def _key_source(args: Any) -> str:
    return "--api-key" if args.api_key is not None else "$PLATFONE_API_KEY"


def _key_problem(args: Any, error: InvalidParameterError) -> str:
    """A missing or malformed key, in the command's terms rather than the SDK's."""
    if args.api_key is None and not os.environ.get("PLATFONE_API_KEY"):
        return "no API key: pass --api-key KEY or set PLATFONE_API_KEY"
    return f"the API key from {_key_source(args)} {error.rule}"


def _refused_key_hint(args: Any, base_url: str | None) -> str:
    """Where the refused key came from, and that sandbox and production keys differ."""
    if base_url:
        where = f"the API at {base_url}"
    elif args.sandbox:
        where = "the sandbox (--sandbox), whose keys differ from production ones"
    else:
        where = "the production API, whose keys differ from sandbox ones (--sandbox)"
    return f"the key from {_key_source(args)} was refused by {where}"


@contextlib.asynccontextmanager
async def _client(
    args: Any, base_url: str | None, client_options: dict[str, Any], hint: PollHint
) -> AsyncIterator[AsyncPlatfone]:
    """The client, its httpx client watching for a poll hint (one of its own, as the SDK
    would make, or the one given, its hook removed afterwards)."""
    options = {"timeout": args.request_timeout, **client_options}
    if args.spend_limit is not None:
        options["spend_limit"] = args.spend_limit
    async with contextlib.AsyncExitStack() as stack:
        http = options.get("http_client")
        if http is None:
            http = options["http_client"] = await stack.enter_async_context(httpx.AsyncClient())
        hooks = http.event_hooks["response"]
        hooks.append(hint.observe)
        stack.callback(hooks.remove, hint.observe)
        if "limits_backend" not in options:
            from ._state import state_backend

            key = args.api_key or os.environ.get("PLATFONE_API_KEY")
            backend = options["limits_backend"] = state_backend(args.state, key)
            if backend is not None:
                stack.push_async_callback(backend.aclose)
        client = AsyncPlatfone(args.api_key, sandbox=args.sandbox, base_url=base_url, **options)
        async with client:
            yield client


async def _say_lapsed(client: AsyncPlatfone, out: Output) -> None:
    """One line on stderr when the journal holds numbers a run that died left open."""
    try:
        lapsed = [o for o in await client.open_activations() if o.lapsed]
    except PlatfoneError:
        return  # the command itself will say what is wrong with the store
    if lapsed:
        n = len(lapsed)
        numbers = "1 number" if n == 1 else f"{n} numbers"
        out.note(
            f"platfone: {numbers} left open by a run that ended "
            "(platfone open lists them; platfone recover settles them)"
        )


async def _run_demo(out: Output, sms_delay: float) -> int:
    from ._demo import run_demo

    def say(line: str) -> None:
        out.stdout.write(line + "\n")
        out.stdout.flush()

    return await run_demo(say, sms_delay=sms_delay)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _serve_emulator(options: list[str]) -> int:
    """``platfone emulator ...`` is ``python -m platfone_async.testing serve ...``."""
    saved = sys.argv
    sys.argv = ["platfone emulator", "serve", *options]
    try:
        runpy.run_module("platfone_async.testing", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    finally:
        sys.argv = saved
    return EXIT_OK


class _StderrHandler(logging.Handler):
    """Log records as lines on the command's stderr (looked up when written)."""

    def __init__(self, out: Output, level: int) -> None:
        super().__init__(level)
        self._out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._out.note(self.format(record))
        except Exception:  # pragma: no cover - logging must not break the command
            self.handleError(record)


@contextlib.contextmanager
def _logging(out: Output, verbose: int) -> Iterator[None]:
    """The SDK's warnings (what a session does on Ctrl-C) always reach stderr; -v adds
    its info lines, -vv every request."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = _StderrHandler(out, level)
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("platfone_async")
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(min(level, logger.getEffectiveLevel()))
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
