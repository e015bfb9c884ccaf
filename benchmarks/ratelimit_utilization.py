"""How much of a documented limit the client uses, and what limiting costs per call.

    python benchmarks/ratelimit_utilization.py [--quick]

(a) utilization: the emulator on a loopback port (uvicorn, another process) enforces
    ``get_balance`` at 100 calls per 2 s as a rolling window; N concurrent tasks hammer it
    through one ``AsyncPlatfone`` with the same limit for several periods. Reports the
    achieved rate over the limit (target >= 0.99) and the 429s drawn (target 0).
(b) overhead: ``get_balance`` calls per second in-process (``httpx.MockTransport``) with
    a limiter that never binds vs ``rate_limits=None``, in the same run (target < 3 %).

Prints a table, then one JSON object on the last line. Asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import sys
import time

import anyio
import httpx
from _serving import start_server

from platfone_async import AsyncPlatfone, RateLimit, RateLimitError

CALLS, PERIOD = 100, 2.0
BALANCE = json.dumps({"total": 100, "reserved": 0}).encode()


def _serve(port: int) -> None:
    import uvicorn

    from platfone_async.testing import PlatfoneEmulator

    emulator = PlatfoneEmulator(
        api_key="bench-key",
        base_url=f"http://127.0.0.1:{port}/api/v1",
        rate_limits={"get_balance": RateLimit(CALLS, PERIOD)},
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(emulator.app, interface="asgi3", log_level="error", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


async def _utilization(base_url: str, periods: int, tasks: int) -> dict[str, float]:
    duration = periods * PERIOD
    answered: list[float] = []
    too_many = 0
    client = AsyncPlatfone(
        "bench-key",
        base_url=base_url,
        rate_limits={"get_balance": RateLimit(CALLS, PERIOD)},
        rate_limit_wait=0,
        max_retries=0,
    )
    t0 = time.monotonic()

    async def hammer() -> None:
        nonlocal too_many
        while True:
            now = time.monotonic() - t0
            if now >= duration:
                return
            try:
                await client.get_balance()
            except RateLimitError:
                too_many += 1
            else:
                # the response time: a call queued for a token did not "happen" when it
                # started waiting, but when it got through
                answered.append(time.monotonic() - t0)

    async with client, anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(hammer)
    # Count the calls answered inside the measured span: the limit allows CALLS per PERIOD.
    in_span = sum(1 for t in answered if t < duration)
    # The sustained rate: how far apart successive batches of CALLS answers are; the limit
    # allows one batch per PERIOD (a token returns a period after its response).
    answered.sort()
    batches = [answered[k] for k in range(0, len(answered), CALLS)]
    gaps = [b - a for a, b in itertools.pairwise(batches)]
    sustained = PERIOD / (sum(gaps) / len(gaps)) if gaps else float("nan")
    return {
        "limit_calls": CALLS,
        "limit_period_s": PERIOD,
        "span_s": duration,
        "calls": in_span,
        "utilization": in_span / (CALLS * duration / PERIOD),
        "sustained_utilization": sustained,
        "server_429s": too_many,
    }


async def _overhead(n: int, rounds: int) -> dict[str, float]:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=BALANCE))

    def client(limited: bool) -> AsyncPlatfone:
        return AsyncPlatfone(
            f"overhead-{limited}",
            base_url="http://bench.test/api/v1",
            http_client=httpx.AsyncClient(transport=transport),
            rate_limits={"get_balance": RateLimit(10**9, 60)} if limited else None,
        )

    on, off = client(True), client(False)
    best = {True: 0.0, False: 0.0}
    for _ in range(rounds):
        for limited, c in ((False, off), (True, on)):
            start = time.perf_counter()
            for _ in range(n):
                await c.get_balance()
            best[limited] = max(best[limited], n / (time.perf_counter() - start))
    return {
        "calls_per_s_unlimited": best[False],
        "calls_per_s_limited": best[True],
        "limiting_cost": 1 - best[True] / best[False],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    periods, tasks, n, rounds = (2, 50, 500, 3) if args.quick else (10, 200, 3000, 7)
    proc, base_url = start_server(__file__)
    try:
        util = anyio.run(_utilization, base_url, periods, tasks)
    finally:
        proc.terminate()
        proc.wait()
    cost = anyio.run(_overhead, n, rounds)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        f"utilization  {util['calls']:.0f} calls in {util['span_s']:.0f} s at "
        f"{CALLS}/{PERIOD:.0f}s: {util['utilization']:.3f} of the limit (target >= 0.99); "
        f"sustained {util['sustained_utilization']:.3f}; "
        f"{util['server_429s']:.0f} server 429s (target 0)"
    )
    print(
        f"overhead     {cost['calls_per_s_unlimited']:.0f} calls/s unlimited, "
        f"{cost['calls_per_s_limited']:.0f} limited: {cost['limiting_cost']:+.1%} "
        "(target < 3 %)"
    )
    print(
        json.dumps(
            {
                "benchmark": "ratelimit_utilization",
                **util,
                **{k: round(v, 4) for k, v in cost.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
