"""What the sync facade ``Platfone`` costs per call, against its baselines in the same run.

    python benchmarks/sync_facade.py [--quick]

(a) loopback: ``get_balance`` against the emulator served by uvicorn in another process
    (this script, run with ``--serve``),
    through ``AsyncPlatfone`` (awaited in ``asyncio.run``), through ``Platfone`` (a
    blocking call that hops to its loop thread and back), and through a bare
    ``httpx.Client`` plus ``json.loads`` (the plain sync way);
(b) in-process: the same through ``httpx.ASGITransport`` (no sockets), where the thread
    hop is most of the difference;
(c) the hop alone: a no-op through the facade's bridge, next to a bare
    ``anyio.from_thread`` ``BlockingPortal.call`` of a no-op coroutine.

Client-side rate limiting is off (``rate_limits=None``); so are the emulator's limits.
Each figure is the median over rounds of sequential calls (microseconds per call); the
rounds of the variants alternate, which goes first turning each round. The facade's
overhead is the median of each round's own sync/async ratio (and in-process, of each
round's difference): the machine's speed drifts between rounds by more than the hop
costs, and a round's variants ran side by side. Prints a table, then one JSON object on
the last line. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from anyio.from_thread import start_blocking_portal

from platfone_async import AsyncPlatfone, Platfone
from platfone_async.testing import PlatfoneEmulator


def serve() -> None:
    """The child process: the emulator under uvicorn on a free loopback port.

    Like ``python -m platfone_async.testing serve``, but its listening socket is made with
    ``IPPROTO_TCP``, so that asyncio sets ``TCP_NODELAY`` on each connection; without it,
    Nagle's algorithm meets the client's delayed ACK and every call takes ~40 ms.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    emulator = PlatfoneEmulator(rate_limits=None, base_url=f"http://127.0.0.1:{port}/api/v1")
    print(emulator.base_url, emulator.api_key, flush=True)
    config = uvicorn.Config(emulator.app, interface="asgi3", log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def served_emulator() -> Iterator[tuple[str, str]]:
    """The emulator on a loopback port (uvicorn, another process): (base URL, API key)."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert server.stdout is not None
    try:
        base_url, api_key = server.stdout.readline().split()
        yield base_url, api_key
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def per_call_us(run: Callable[[int], float], calls: int) -> float:
    """Microseconds per call of ``run(calls)``, which returns the seconds its calls took."""
    return run(calls) / calls * 1e6


def timed(calls: Callable[[], None]) -> float:
    started = time.perf_counter()
    calls()
    return time.perf_counter() - started


def compare(
    variants: dict[str, Callable[[int], float]], calls: int, rounds: int
) -> dict[str, list[float]]:
    """Per-call microseconds of each variant in each round, rounds interleaved (which
    variant goes first turns each round), after a warm-up."""
    for run in variants.values():
        run(max(calls // 10, 10))
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for i in range(rounds):
        for name, run in order[i % len(order) :] + order[: i % len(order)]:
            samples[name].append(per_call_us(run, calls))
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def paired(samples: dict[str, list[float]], base: str, other: str) -> float:
    """The median over rounds of ``other``/``base``: each round's two ran side by side,
    so the machine's drift between rounds cancels out."""
    return statistics.median(o / b for b, o in zip(samples[base], samples[other], strict=True))


def async_runner(make: Callable[[], AsyncPlatfone]) -> Callable[[int], float]:
    """``calls`` awaited get_balance calls in a fresh asyncio.run (a client per run); only
    the calls are timed, not the loop's start or the client's set-up."""

    async def main(calls: int) -> float:
        async with make() as client:
            await client.get_balance()  # connection set up outside the loop below
            started = time.perf_counter()
            for _ in range(calls):
                await client.get_balance()
            return time.perf_counter() - started

    return lambda calls: asyncio.run(main(calls))


def sync_runner(client: Platfone) -> Callable[[int], float]:
    def run(calls: int) -> float:
        def loop() -> None:
            for _ in range(calls):
                client.get_balance()

        return timed(loop)

    return run


def httpx_runner(http: httpx.Client, url: str, api_key: str) -> Callable[[int], float]:
    headers = {"X-Api-Key": api_key, "Accept": "application/json"}

    def run(calls: int) -> float:
        def loop() -> None:
            for _ in range(calls):
                response = http.get(url, headers=headers)
                response.raise_for_status()
                json.loads(response.content)

        return timed(loop)

    return run


def loopback(calls: int, rounds: int) -> dict[str, list[float]]:
    with (
        served_emulator() as (base_url, api_key),
        Platfone(api_key, base_url=base_url, rate_limits=None) as client,
        httpx.Client() as http,
    ):
        return compare(
            {
                "async": async_runner(
                    lambda: AsyncPlatfone(api_key, base_url=base_url, rate_limits=None)
                ),
                "sync": sync_runner(client),
                "httpx": httpx_runner(http, base_url + "/user/balance", api_key),
            },
            calls,
            rounds,
        )


def in_process(calls: int, rounds: int) -> dict[str, list[float]]:
    emulator = PlatfoneEmulator(rate_limits=None)

    def make() -> AsyncPlatfone:
        return emulator.client(rate_limits=None)

    sync = Platfone(
        emulator.api_key,
        base_url=emulator.base_url,
        http_client=emulator.http_client(),
        rate_limits=None,
    )
    with sync:
        return compare({"async": async_runner(make), "sync": sync_runner(sync)}, calls, rounds)


async def _noop() -> None:
    return None


def hops(calls: int, rounds: int) -> dict[str, list[float]]:
    """A no-op through the facade's bridge vs a bare BlockingPortal.call."""
    with start_blocking_portal() as portal, Platfone("not-used") as client:
        client._target()  # start its loop
        runtime = client._runtime

        def portal_calls(n: int) -> float:
            def loop() -> None:
                for _ in range(n):
                    portal.call(_noop)

            return timed(loop)

        def bridge_calls(n: int) -> float:
            def loop() -> None:
                for _ in range(n):
                    runtime.run(_noop)

            return timed(loop)

        return compare({"portal": portal_calls, "bridge": bridge_calls}, calls * 5, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    calls, rounds = (150, 3) if args.quick else (500, 21)

    net_samples = loopback(calls, rounds)
    local_samples = in_process(calls, rounds)
    net, local, hop = medians(net_samples), medians(local_samples), medians(hops(calls, rounds))
    overhead = paired(net_samples, "async", "sync") - 1
    added = statistics.median(
        s - a for a, s in zip(local_samples["async"], local_samples["sync"], strict=True)
    )

    results: dict[str, Any] = {
        "benchmark": "sync_facade",
        "quick": args.quick,
        "calls_per_round": calls,
        "rounds": rounds,
        "loopback_async_us": round(net["async"], 1),
        "loopback_sync_us": round(net["sync"], 1),
        "loopback_httpx_sync_us": round(net["httpx"], 1),
        "loopback_facade_overhead_pct": round(overhead * 100, 1),
        "loopback_sync_vs_httpx_ratio": round(net["sync"] / net["httpx"], 2),
        "in_process_async_us": round(local["async"], 1),
        "in_process_sync_us": round(local["sync"], 1),
        "in_process_facade_added_us": round(added, 1),
        "bridge_noop_us": round(hop["bridge"], 1),
        "portal_call_noop_us": round(hop["portal"], 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    rows = [
        ("loopback: AsyncPlatfone (awaited)", net["async"]),
        ("loopback: Platfone (blocking)", net["sync"]),
        ("loopback: httpx.Client + json.loads", net["httpx"]),
        ("in-process: AsyncPlatfone (awaited)", local["async"]),
        ("in-process: Platfone (blocking)", local["sync"]),
        ("hop: Platfone bridge, no-op", hop["bridge"]),
        ("hop: BlockingPortal.call, no-op", hop["portal"]),
    ]
    print(f"{'per call (median of rounds)':<40}{'us':>10}")
    for label, value in rows:
        print(f"{label:<40}{value:>10.1f}")
    print(
        f"facade overhead on loopback: {results['loopback_facade_overhead_pct']:+.1f}%; "
        f"in-process it adds {results['in_process_facade_added_us']:.1f} us "
        f"(a bare portal call costs {results['portal_call_noop_us']:.1f} us)"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
