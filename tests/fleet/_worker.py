"""One worker process of a fleet test (and of ``benchmarks/fleet.py``).

    python -m tests.fleet._worker MODE --base-url URL --api-key KEY --state URL --prefix P

``--state`` is ``redis://...`` (keys under ``--prefix``) or ``sqlite:///path`` (one file).

Modes: ``balance`` (``--calls`` get_balance calls at once), ``sessions`` (``--sessions``
``activation()`` sessions at once, each waiting for its SMS), ``hold`` (order
``--sessions`` numbers, print their ids, then wait to be killed), ``order`` (one
``create_activation``; reconciliation looks ``--reconcile-delays`` after a failure),
``wait`` (``--sessions`` sessions waiting for their SMS: the ids once all are open, then
each outcome and code), ``recover`` (``recover()``, then one order without waiting for a
slot) and ``orphans`` (``recover_orphans=True`` until the journal is empty).
The worker waits for ``--start-at`` (a ``time.time()``) so that every worker of a test
starts together, and prints one JSON object with what it did.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import anyio

from platfone_async import (
    AsyncPlatfone,
    PlatfoneError,
    RateLimit,
    RedisBackend,
    RetryPolicy,
    SQLiteBackend,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.fleet._worker")
    parser.add_argument(
        "mode", choices=["balance", "sessions", "hold", "order", "wait", "recover", "orphans"]
    )
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--state", "--redis", dest="state", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--limit", type=int, default=20, help="get_balance calls per period")
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--capacity", type=int, default=20, help="max_active_activations")
    parser.add_argument("--slot-grace", type=float, default=5.0)
    parser.add_argument("--lease", type=float, default=30.0, help="the owner's lease, s")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--reconcile-delays", default="1,4,10", help="seconds, comma-separated")
    parser.add_argument("--event-loop", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--seconds", type=float, default=30.0, help="orphans: the longest run")
    return parser


def _backend(args: argparse.Namespace) -> RedisBackend | SQLiteBackend:
    if args.state.startswith("sqlite://"):
        path = args.state.removeprefix("sqlite://")
        return SQLiteBackend(path, slot_grace=args.slot_grace, lease=args.lease)
    return RedisBackend.from_url(
        args.state, prefix=args.prefix, slot_grace=args.slot_grace, lease=args.lease
    )


def _client(args: argparse.Namespace, backend: RedisBackend | SQLiteBackend) -> AsyncPlatfone:
    return AsyncPlatfone(
        args.api_key,
        recover_orphans=args.mode == "orphans",
        base_url=args.base_url,
        limits_backend=backend,
        rate_limits={"get_balance": RateLimit(args.limit, args.period)},
        max_active_activations=args.capacity,
        success_rate_guard="off",
        retry_policy=RetryPolicy(
            max_server_wait=0.0,
            max_rate_limit_waits=0,
            reconcile_delays=[float(d) for d in args.reconcile_delays.split(",")],
        ),
        timeout=30.0,
    )


async def _balance(client: AsyncPlatfone, calls: int) -> dict[str, Any]:
    errors: list[str] = []
    sent: list[float] = []

    async def one() -> None:
        try:
            await client.get_balance()
            sent.append(time.time())
        except PlatfoneError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(one)
    return {"done": len(sent), "errors": errors}


async def _sessions(client: AsyncPlatfone, sessions: int) -> dict[str, Any]:
    outcomes: list[str] = []
    errors: list[str] = []

    async def one() -> None:
        try:
            async with client.activation("telegram", "uk") as session:
                await session.wait_for_sms(timeout=60, interval=0.1)
            outcomes.append(str(session.outcome))
        except PlatfoneError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    async with anyio.create_task_group() as tg:
        for _ in range(sessions):
            tg.start_soon(one)
    return {"outcomes": outcomes, "errors": errors}


async def _hold(client: AsyncPlatfone, sessions: int) -> None:
    ids = [
        (await client.create_activation("telegram", "uk")).activation_id for _ in range(sessions)
    ]
    print(json.dumps({"held": ids}), flush=True)
    await anyio.sleep(3600)  # until killed


async def _wait(client: AsyncPlatfone, sessions: int) -> dict[str, Any]:
    held: list[str] = []
    outcomes: dict[str, Any] = {}
    all_open = anyio.Event()

    async def one() -> None:
        async with client.activation("telegram", "uk") as session:
            held.append(session.activation.activation_id)
            if len(held) == sessions:
                all_open.set()
            await session.wait_for_sms(interval=0.2)
        outcomes[session.activation.activation_id] = [
            str(session.outcome),
            session.activation.sms_code,
        ]

    async with anyio.create_task_group() as tg:
        for _ in range(sessions):
            tg.start_soon(one)
        await all_open.wait()
        print(json.dumps({"held": held}), flush=True)
    return {"outcomes": outcomes}


async def _recover(client: AsyncPlatfone) -> dict[str, Any]:
    settled = await client.recover(interval=0.2)
    recovered = {
        s.activation.activation_id: [str(s.outcome), s.activation.sms_code] for s in settled
    }
    try:
        after = await client.create_activation("telegram", "uk", wait_for_slot=False)
        ordered: str | None = after.activation_id
    except PlatfoneError as exc:
        ordered = f"{type(exc).__name__}: {exc}"
    return {"recovered": recovered, "ordered": ordered}


async def _orphans(client: AsyncPlatfone, seconds: float) -> dict[str, Any]:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not await client.open_activations():
            return {"journal": "empty"}
        await anyio.sleep(0.2)
    return {"journal": [o.activation.activation_id for o in await client.open_activations()]}


async def _order(client: AsyncPlatfone) -> dict[str, Any]:
    try:
        activation = await client.create_activation("telegram", "uk")
    except PlatfoneError as exc:
        return {"activation_id": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"activation_id": activation.activation_id, "error": None}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    backend = _backend(args)
    try:
        async with _client(args, backend) as client:
            delay = args.start_at - time.time()
            if delay > 0:
                await anyio.sleep(delay)
            if args.mode == "balance":
                return await _balance(client, args.calls)
            if args.mode == "sessions":
                return await _sessions(client, args.sessions)
            if args.mode == "order":
                return await _order(client)
            if args.mode == "wait":
                return await _wait(client, args.sessions)
            if args.mode == "recover":
                return await _recover(client)
            if args.mode == "orphans":
                return await _orphans(client, args.seconds)
            await _hold(client, args.sessions)
            return {}
    finally:
        await backend.aclose()


def main() -> int:
    args = _parser().parse_args()
    result = anyio.run(_main, args, backend=args.event_loop)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
