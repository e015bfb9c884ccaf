"""``python -m platfone_async.testing serve``: the emulator on a real port (uvicorn)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
from collections.abc import Sequence

from ._emulator import PlatfoneEmulator
from ._sms import SmsPolicy

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m platfone_async.testing", description="The Platfone emulator."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the emulator over HTTP (needs uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (8080)")
    serve.add_argument("--api-key", default=None, help="the ready account's key (random)")
    serve.add_argument("--balance", type=int, default=10_000, help="its balance in cents")
    serve.add_argument(
        "--sms-delay",
        type=float,
        default=5.0,
        help="seconds until an SMS arrives by itself; negative: never (5)",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed of the catalog and ids")
    serve.add_argument(
        "--no-rate-limits", action="store_true", help="do not enforce the documented limits"
    )
    serve.set_defaults(handler=serve_command)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        print("serving needs uvicorn: pip install 'platfone-async[emulator]'", file=sys.stderr)
        return 1
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
    emulator = PlatfoneEmulator(
        api_key=args.api_key,
        balance=args.balance,
        seed=args.seed,
        sms_policy=None if args.sms_delay < 0 else SmsPolicy(delay=args.sms_delay),
        rate_limits=None if args.no_rate_limits else PlatfoneEmulator.DOCUMENTED_RATE_LIMITS,
        base_url=f"http://{host}:{port}/api/v1",
    )
    print(f"Platfone emulator at {emulator.base_url}", flush=True)
    print(f"API key: {emulator.api_key}", flush=True)
    config = uvicorn.Config(emulator.app, interface="asgi3", log_level="warning", lifespan="on")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handler it found: make that one a clean exit, so stopping the server is not an error.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    status: int = args.handler(args)
    return status
