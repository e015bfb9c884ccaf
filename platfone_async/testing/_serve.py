"""``python -m platfone_async.testing serve``: the emulator on a real port (uvicorn), with
its control API under ``/_emulator/`` and webhooks sent while it runs. It stops cleanly,
exit status 0, on SIGINT (Ctrl-C) and SIGTERM. (``platfone emulator`` passes its options
on to this command.)"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

from ._asgi import Receive, Scope, Send
from ._clock import VirtualClock
from ._emulator import PlatfoneEmulator
from ._faults import DroppedConnection
from ._realclock import TimeSource
from ._sms import SmsPolicy

__all__ = ["add_serve_arguments", "build_emulator", "main", "serve_command", "served_app"]


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    """The serve command's options."""
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (8080)")
    serve.add_argument(
        "--api-key",
        action="append",
        default=None,
        help="an account's API key; repeat for several accounts (default: one random key)",
    )
    serve.add_argument("--balance", type=int, default=10_000, help="each account's cents")
    serve.add_argument(
        "--sms-delay",
        type=float,
        default=5.0,
        help="seconds until an SMS arrives by itself; negative: never (5)",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed of the catalog and ids")
    serve.add_argument("--webhook-url", default=None, help="POST signed webhooks here")
    serve.add_argument("--webhook-secret", default=None, help="the webhooks' signing secret")
    serve.add_argument(
        "--clock",
        choices=("real", "virtual"),
        default="real",
        help="real: the wall clock; virtual: time moves only by POST /_emulator/advance",
    )
    serve.add_argument(
        "--no-rate-limits", action="store_true", help="do not enforce the documented limits"
    )
    serve.set_defaults(handler=serve_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m platfone_async.testing", description="The Platfone emulator."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the emulator over HTTP (needs uvicorn)")
    add_serve_arguments(serve)
    return parser


def build_emulator(args: argparse.Namespace, base_url: str) -> PlatfoneEmulator:
    """The emulator the options describe, its accounts opened and webhooks configured."""
    keys: list[str] = list(args.api_key or [])
    clock: TimeSource | None = VirtualClock(start=time.time()) if args.clock == "virtual" else None
    emulator = PlatfoneEmulator(
        clock=clock,
        api_key=keys[0] if keys else None,
        balance=args.balance,
        seed=args.seed,
        sms_policy=None if args.sms_delay < 0 else SmsPolicy(delay=args.sms_delay),
        rate_limits=None if args.no_rate_limits else PlatfoneEmulator.DOCUMENTED_RATE_LIMITS,
        base_url=base_url,
    )
    for key in keys[1:]:
        emulator.add_account(key, balance=args.balance)
    if args.webhook_url is not None:
        for key in keys or [emulator.api_key]:
            emulator.configure_webhooks(args.webhook_url, secret=args.webhook_secret, api_key=key)
    return emulator


def served_app(emulator: PlatfoneEmulator) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The emulator's ASGI app, sending its webhooks for as long as the server runs."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan_with_webhooks(emulator, receive, send)
            return
        # An injected drop ends the answer half-sent: uvicorn then closes the socket and
        # logs one line, instead of a traceback per injected fault.
        with contextlib.suppress(DroppedConnection):
            await emulator.app(scope, receive, send)

    return app


async def _lifespan_with_webhooks(emulator: PlatfoneEmulator, receive: Receive, send: Send) -> None:
    """Deliver webhooks from startup until shutdown, and say the shutdown is complete only
    once they have stopped (uvicorn cancels whatever still runs after it)."""
    while (await receive())["type"] != "lifespan.startup":
        pass
    async with emulator.webhooks.running():
        await send({"type": "lifespan.startup.complete"})
        while (await receive())["type"] != "lifespan.shutdown":
            pass
    await send({"type": "lifespan.shutdown.complete"})


def _check(args: argparse.Namespace) -> str | None:
    if (args.webhook_url is None) != (args.webhook_secret is None):
        return "--webhook-url and --webhook-secret go together"
    keys = args.api_key or []
    if len(set(keys)) != len(keys) or not all(keys):
        return "each --api-key must be given once and be non-empty"
    return None


def serve_command(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        print(
            "serving needs uvicorn, from the 'emulator' extra: pip install "
            "'platfone-async[emulator]' (from a checkout: pip install -e '.[emulator]')",
            file=sys.stderr,
        )
        return 2
    problem = _check(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # proto IPPROTO_TCP, so that asyncio sets TCP_NODELAY (with proto 0 it does not, and
    # every small response waits ~40 ms for the delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    # Listening before the address is printed: a client that reads it may connect at
    # once (its connection waits in the backlog until uvicorn accepts), never refused.
    sock.listen(2048)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    emulator = build_emulator(args, f"http://{host}:{port}/api/v1")
    print(f"Platfone emulator at {emulator.base_url}", flush=True)
    # The first two lines stay "base URL", "API key" (scripts read them so).
    for key in args.api_key or [emulator.api_key]:
        print(f"API key: {key}", flush=True)
    print(f"Control API at {emulator.control_url}", flush=True)
    # A stop waits at most 2 s for answers in flight (a fault may be delaying one).
    config = uvicorn.Config(
        served_app(emulator),
        interface="asgi3",
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handler it found: make SIGTERM's act as SIGINT's, so either stop is a clean exit.
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
    sock.close()
    print("Platfone emulator stopped", flush=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    status: int = args.handler(args)
    return status
