"""A fleet of processes on one key, limited through a shared store: achieved rate, 429s, cost.

    python benchmarks/fleet.py [--quick] [--backend redis|sqlite]

(a) 1, 2, 4 and 8 worker processes (``tests/fleet/_worker.py``) share
    one API key and one store (``RedisBackend``, or ``SQLiteBackend`` on one file);
    together they call ``get_balance`` as fast as
    the limit allows against the emulator served on a loopback port, which enforces
    the same limit as a rolling window. Reports, from the emulator's own arrival record,
    the achieved rate over the limit after the first burst (target >= 0.95), the most
    arrivals in any rolling period (never over the limit), the server 429s (target 0)
    and, on Redis, the round trips per call (Redis's ``INFO commandstats``).
(b) the added time of one acquire and release through the store against the memory
    store, in-process, on a limit that never binds.

Redis: ``PLATFONE_TEST_REDIS_URL``, or a ``redis-server`` started here. Prints a table,
then one JSON object on the last line. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from platfone_async import RateLimit, RedisBackend, SQLiteBackend  # noqa: E402
from platfone_async._clock import SystemClock  # noqa: E402
from platfone_async._ratelimit import KeyLimits  # noqa: E402
from platfone_async.testing import PlatfoneEmulator  # noqa: E402
from tests.fleet._servers import max_in_window, redis_url, serve  # noqa: E402


def _round_trips(url: str) -> int:
    if url.startswith("sqlite://"):
        return 0
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(
        int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval")
    )


def _fleet(url: str, processes: int, limit: int, period: float, rounds: int) -> dict[str, Any]:
    if url.startswith("sqlite://"):
        url = f"sqlite://{tempfile.mkdtemp(prefix='platfone-bench-')}/fleet.db"
    emulator = PlatfoneEmulator(rate_limits={"get_balance": (limit, period)})
    total = limit * (rounds + 1)
    calls = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    before = _round_trips(url)
    with serve(emulator) as base_url:
        start_at = time.time() + 1.0 + 0.15 * processes
        workers = [
            subprocess.Popen(
                [
                    sys.executable, "-m", "tests.fleet._worker", "balance",
                    "--base-url", base_url, "--api-key", emulator.api_key,
                    "--state", url, "--prefix", prefix, "--calls", str(n),
                    "--limit", str(limit), "--period", str(period),
                    "--start-at", str(start_at),
                ],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for n in calls
        ]  # fmt: skip
        errors: list[str] = []
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            if worker.returncode != 0:
                raise RuntimeError(err[-2000:])
            errors += json.loads(out.strip().splitlines()[-1])["errors"]
    trips = _round_trips(url) - before
    records = [r for r in emulator.requests if r.route == "get_balance"]
    arrivals = sorted(r.time for r in records)
    achieved = (len(arrivals) - limit) / (arrivals[-1] - arrivals[0]) * period / limit
    return {
        "processes": processes,
        "calls": len(arrivals),
        "achieved_over_limit": round(achieved, 4),
        "max_in_period": max_in_window(arrivals, period),
        "server_429s": sum(1 for r in records if r.status == 429),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "round_trips_per_call": round(trips / max(len(arrivals), 1), 2),
    }


async def _acquire_cost(url: str, n: int) -> dict[str, float]:
    """Microseconds per acquire + release: in memory, and through the shared store."""
    huge = {"get_balance": RateLimit(10**9, 60)}
    clock = SystemClock()
    backend: RedisBackend | SQLiteBackend
    if url.startswith("sqlite://"):
        backend = SQLiteBackend(f"{tempfile.mkdtemp(prefix='platfone-bench-')}/cost.db")
    else:
        backend = RedisBackend.from_url(url, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    results: dict[str, float] = {}
    try:
        for name, limits in (
            ("memory", KeyLimits(key="k", base_url="b", rate_limits=huge, clock=clock)),
            (
                "store",
                KeyLimits(key="k", base_url="b", rate_limits=huge, clock=clock, backend=backend),
            ),
        ):
            for _ in range(50):  # warm up: connections, scripts
                async with limits.acquire("get_balance"):
                    pass
            started = time.perf_counter()
            for _ in range(n):
                async with limits.acquire("get_balance"):
                    pass
            results[f"{name}_acquire_us"] = round((time.perf_counter() - started) / n * 1e6, 1)
    finally:
        await backend.aclose()
    results["store_added_us"] = round(results["store_acquire_us"] - results["memory_acquire_us"], 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long run")
    parser.add_argument("--backend", choices=["redis", "sqlite"], default="redis")
    args = parser.parse_args()
    sizes = (1, 2, 4, 8)
    limit, period, rounds = (10, 0.5, 2) if args.quick else (20, 1.0, 5)
    with contextlib.ExitStack() as stack:
        url = "sqlite://" if args.backend == "sqlite" else stack.enter_context(redis_url())
        runs = [_fleet(url, n, limit, period, rounds) for n in sizes]
        cost = anyio.run(_acquire_cost, url, 200 if args.quick else 2000)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"limit: {limit} get_balance calls per {period:g} s, rolling, at the emulator")
    redis = args.backend == "redis"
    for run in runs:
        print(
            f"{run['processes']} processes: {run['calls']} calls, "
            f"{run['achieved_over_limit']:.3f} of the limit (target >= 0.95), "
            f"at most {run['max_in_period']} in a period, {run['server_429s']} server 429s"
            + (f", {run['round_trips_per_call']} Redis round trips per call" if redis else "")
        )
    print(
        f"acquire + release: {cost['memory_acquire_us']} us in memory, "
        f"{cost['store_acquire_us']} us through {args.backend} (+{cost['store_added_us']} us)"
    )
    worst = min(run["achieved_over_limit"] for run in runs)
    summary = {"benchmark": "fleet", "backend": args.backend, "runs": runs, "worst_achieved": worst}
    print(json.dumps({**summary, **cost}))


if __name__ == "__main__":
    main()
