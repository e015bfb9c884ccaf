"""What an uncontended rate-limiter acquire costs, against a bare ``anyio.Lock`` in the same run.

    python benchmarks/ratelimit.py [--quick]

On asyncio and on trio, in one process, each timed as a tight loop of
``async with X: pass`` on the real clock:

(a) baseline: a bare ``anyio.Lock`` (which checkpoints - yields to the event loop - on
    every acquire, as anyio's primitives do);
(b) limiter: one endpoint's ``SlidingWindowLimiter`` with tokens to spare (take a token,
    stamp its return on the way out; no checkpoint: the request that follows has plenty);
(c) pipeline: the same through ``KeyLimits.acquire(name)``, as the request pipeline calls
    it (account-block check and endpoint lookup included);
(d) for scale: ``async with`` on a context manager that does nothing (the loop's own cost).

Each figure is the best of several rounds, in microseconds per acquire-and-release.
Prints a table, then one JSON object on the last line. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio

from platfone_async._clock import SystemClock
from platfone_async._ratelimit import KeyLimits, RateLimit
from platfone_async._ratelimit._window import SlidingWindowLimiter

BACKENDS = ("asyncio", "trio")


async def _per_op_us(make: Callable[[], AbstractAsyncContextManager[object]], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        async with make():
            pass
    return (time.perf_counter() - start) / n * 1e6


class _Nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


async def _measure(n: int, rounds: int) -> dict[str, float]:
    clock = SystemClock()
    lock = anyio.Lock()
    # Enough tokens that none is ever waited for: every round's stamps stay in the window.
    calls = n * rounds * 3 + 1
    limiter = SlidingWindowLimiter(calls, 60, clock=clock)
    limits = KeyLimits(
        key="bench",
        base_url="https://bench.invalid",
        rate_limits={"get_balance": RateLimit(calls, 60)},
        clock=clock,
    )
    cases: dict[str, Callable[[], AbstractAsyncContextManager[object]]] = {
        "lock": lambda: lock,
        "limiter": limiter.acquire,
        "pipeline": lambda: limits.acquire("get_balance"),
        "nothing": _Nothing,
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, make in cases.items():  # interleaved, so drift hits every case alike
            best[name] = min(best[name], await _per_op_us(make, n))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long run")
    args = parser.parse_args()
    n, rounds = (20_000, 3) if args.quick else (200_000, 7)
    results: dict[str, float] = {}
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {n} x {rounds}")
    print(
        f"{'':10}{'anyio.Lock':>12}{'limiter':>12}{'ratio':>8}{'pipeline':>12}{'ratio':>8}"
        f"{'no-op':>10}"
    )
    for backend in BACKENDS:
        r = anyio.run(_measure, n, rounds, backend=backend)
        results[f"{backend}_lock_us"] = r["lock"]
        results[f"{backend}_limiter_us"] = r["limiter"]
        results[f"{backend}_pipeline_us"] = r["pipeline"]
        results[f"{backend}_limiter_ratio"] = r["limiter"] / r["lock"]
        results[f"{backend}_pipeline_ratio"] = r["pipeline"] / r["lock"]
        results[f"{backend}_noop_us"] = r["nothing"]
        print(
            f"{backend:10}{r['lock']:>10.2f}us{r['limiter']:>10.2f}us"
            f"{r['limiter'] / r['lock']:>8.2f}{r['pipeline']:>10.2f}us"
            f"{r['pipeline'] / r['lock']:>8.2f}{r['nothing']:>8.2f}us"
        )
    print(json.dumps({"benchmark": "ratelimit", **{k: round(v, 3) for k, v in results.items()}}))


if __name__ == "__main__":
    main()
