"""The ``platfone`` command line (``python -m platfone_async``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial

import anyio

__all__ = ["main"]


def _print(line: str) -> None:
    print(line, flush=True)


def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return anyio.run(partial(run_demo, _print, sms_delay=args.sms_delay))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="platfone", description="The Platfone Activation API from the command line."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run a whole activation against an embedded emulator (no key, no network)"
    )
    demo.add_argument(
        "--sms-delay", type=float, default=2.5, help="seconds until the SMS arrives (2.5)"
    )
    demo.set_defaults(handler=_run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
