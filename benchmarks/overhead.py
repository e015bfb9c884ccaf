"""What the SDK layer costs per call, against raw httpx in the same run.

    python benchmarks/overhead.py [--quick]

(a) loopback: ``get_activation`` through ``AsyncPlatfone`` vs a bare ``httpx.AsyncClient``
    plus ``json.loads``, against a minimal keep-alive HTTP server in another process;
(b) in-process: the same through ``httpx.MockTransport`` (no sockets), which isolates the
    SDK's own work (validation, pipeline, error mapping, decoding into attrs);
(c) import time of ``platfone_async`` vs ``httpx, attrs, cattrs, anyio`` in fresh processes,
    timed around the imports, both from bytecode (see ``_import_time``), as in a base
    install: httpx imports its command line (click, rich, pygments: 30 ms or more)
    whenever click is importable, as it is in the dev environment, which would make the
    SDK's share look smaller. A second row shows the ratio with them, as this
    environment has it.

Per call, the baseline and the SDK alternate in short rounds; the times shown are the
best round of each, the ratio the median of the rounds' paired ratios (see ``_compare``).

Prints a table, then one JSON object on the last line. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

import httpx
from _serving import start_server

from platfone_async import AsyncPlatfone

AID = "64a1c0e8d2a1f9b7e45d3b8e"
BODY = json.dumps(
    {
        "activation_id": AID,
        "price": 20,
        "phone": "14155552671",
        "country_id": "us",
        "service_id": "netflix",
        "sms_status": "smsRequested",
        "activation_status": "active",
        "billing_status": "reserved",
        "report_status": None,
        "sms_code": None,
        "sms_text": None,
        "expire_at": 1729088539,
        "updated_at": 1729087939,
        "created_at": 1729087339,
        "is_retriable": False,
        "cancelable_after": None,
    }
).encode()


# -- a minimal HTTP/1.1 keep-alive server, run in a child process -------------------------


async def _serve(port: int) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(BODY)).encode()
        + b"\r\n\r\n"
        + BODY
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# -- timing ---------------------------------------------------------------------------------


async def _per_call(call: Callable[[], Awaitable[object]], n: int) -> float:
    """Mean seconds per call over ``n`` calls in a row."""
    start = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - start) / n


async def _compare(
    base_url: str, transport: httpx.AsyncBaseTransport | None, n: int, rounds: int
) -> tuple[float, float, float]:
    """(raw, SDK) best-of-rounds seconds per call, and the median of the paired ratios.

    The two alternate in short rounds of ``n`` calls, which of them goes first swapping
    each round, so that drift on the machine hits both alike. On loopback the SDK's own
    share is ~2 % of a call, less than the two processes' noise from round to round:
    the median of each round's SDK/raw ratio is the figure that noise moves least (the
    ratio of the two bests pairs rounds that did not run side by side).
    """
    raw = httpx.AsyncClient(transport=transport) if transport else httpx.AsyncClient()
    sdk_http = httpx.AsyncClient(transport=transport) if transport else httpx.AsyncClient()
    sdk = AsyncPlatfone("bench-key", base_url=base_url, http_client=sdk_http, rate_limits=None)
    url = f"{base_url}/activation/{AID}"
    headers = {"X-Api-Key": "bench-key"}

    async def raw_call() -> object:
        response = await raw.get(url, headers=headers)
        return json.loads(response.content)

    async def sdk_call() -> object:
        return await sdk.get_activation(AID)

    for _ in range(max(10, n // 5)):  # warm both: connections, caches, the converter
        await raw_call()
        await sdk_call()
    raw_t, sdk_t = [], []
    for i in range(rounds):
        if i % 2:
            sdk_t.append(await _per_call(sdk_call, n))
            raw_t.append(await _per_call(raw_call, n))
        else:
            raw_t.append(await _per_call(raw_call, n))
            sdk_t.append(await _per_call(sdk_call, n))
    await raw.aclose()
    await sdk_http.aclose()
    paired = statistics.median(s / r for r, s in zip(raw_t, sdk_t, strict=True))
    return min(raw_t), min(sdk_t), paired


#: Run first in the base-install row: httpx's `from ._main import main` then fails at
#: `import click`, as it does where click is not installed.
BASE_INSTALL = "import sys; sys.modules['click'] = None; "


DEPENDENCIES = "import httpx, attrs, cattrs, anyio"


def _import_time(prologue: str, runs: int) -> tuple[float, float]:
    """(the dependencies' import, ``import platfone_async`` with them) in seconds: each
    fresh interpreter times the dependencies' import and then the SDK's own on top,
    around the statements alone (start-up and shut-down are the same for both and only
    add noise). Each part is the best of ``runs``: the machine's noise only ever adds,
    and two parts of one run share its noise.

    Both sides run from bytecode, as an installed wheel does (pip compiles it): the
    interpreter is free to write it (``PYTHONDONTWRITEBYTECODE`` dropped) into a cache
    of this run's own (``PYTHONPYCACHEPREFIX``), and a first run, not timed, compiles
    it. Without that, an editable checkout would be timed compiling the SDK's source
    against dependencies loaded from bytecode.
    """
    code = (
        f"{prologue}import time; a = time.perf_counter(); {DEPENDENCIES}; "
        "b = time.perf_counter(); import platfone_async; c = time.perf_counter(); "
        "print(b - a, c - b)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
        deps: list[float] = []
        own: list[float] = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", code], check=True, env=env, capture_output=True
            )
            first, second = map(float, out.stdout.split())
            deps.append(first)
            own.append(second)
    return min(deps), min(deps) + min(own)


async def _main(quick: bool) -> dict[str, float]:
    n, rounds = (100, 6) if quick else (250, 60)
    proc, base_url = start_server(__file__)
    try:
        loop_raw, loop_sdk, loop_ratio = await _compare(base_url, None, n, rounds)
    finally:
        proc.terminate()
        proc.wait()
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=BODY))
    mock_raw, mock_sdk, mock_ratio = await _compare("http://bench.test/api/v1", mock, n * 4, rounds)
    runs = 5 if quick else 41
    imp_deps, imp_sdk = _import_time(BASE_INSTALL, runs)
    env_deps, env_sdk = _import_time("", runs)
    return {
        "loopback_raw_us": loop_raw * 1e6,
        "loopback_sdk_us": loop_sdk * 1e6,
        "loopback_ratio": loop_ratio,
        "loopback_ratio_of_bests": loop_sdk / loop_raw,
        "mock_raw_us": mock_raw * 1e6,
        "mock_sdk_us": mock_sdk * 1e6,
        "mock_ratio": mock_ratio,
        "mock_ratio_of_bests": mock_sdk / mock_raw,
        "sdk_layer_us": (mock_sdk - mock_raw) * 1e6,
        "import_deps_ms": imp_deps * 1e3,
        "import_sdk_ms": imp_sdk * 1e3,
        "import_ratio": imp_sdk / imp_deps,
        "import_with_cli_extras_deps_ms": env_deps * 1e3,
        "import_with_cli_extras_sdk_ms": env_sdk * 1e3,
        "import_with_cli_extras_ratio": env_sdk / env_deps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    r = asyncio.run(_main(args.quick))
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"{'':28}{'baseline':>12}{'SDK':>12}{'ratio':>8}  target")
    print(
        f"{'get_activation, loopback':28}{r['loopback_raw_us']:>10.0f}us"
        f"{r['loopback_sdk_us']:>10.0f}us{r['loopback_ratio']:>8.3f}  <= 1.05"
    )
    print(
        f"{'get_activation, in-process':28}{r['mock_raw_us']:>10.0f}us"
        f"{r['mock_sdk_us']:>10.0f}us{r['mock_ratio']:>8.3f}  <= 1.12"
    )
    print(
        f"{'import, base install':28}{r['import_deps_ms']:>10.0f}ms"
        f"{r['import_sdk_ms']:>10.0f}ms{r['import_ratio']:>8.3f}  <= 1.30"
    )
    print(
        f"{'  with httpx CLI (dev env)':28}{r['import_with_cli_extras_deps_ms']:>10.0f}ms"
        f"{r['import_with_cli_extras_sdk_ms']:>10.0f}ms{r['import_with_cli_extras_ratio']:>8.3f}"
    )
    print(
        "  per-call ratios: the median of paired rounds; of the two bests: "
        f"{r['loopback_ratio_of_bests']:.3f} loopback, {r['mock_ratio_of_bests']:.3f} in-process"
    )
    print(json.dumps({"benchmark": "overhead", **{k: round(v, 3) for k, v in r.items()}}))


if __name__ == "__main__":
    main()
