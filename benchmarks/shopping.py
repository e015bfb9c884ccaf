"""Shopping for codes: money per code and time to code, by preference, against one country.

    python benchmarks/shopping.py [--quick]

A market in the emulator (in-process, virtual time): five countries sell ``telegram``
at different prices, qualities and stocks; SMS arrive by the quality of the number's
offer (``SmsPolicy(follow_quality=True)``: a 0.9 offer delivers nine times in ten, and
sooner) and the other numbers stay silent. 20 workers get 200 codes in all (quick: 40):
each holds a session, waits up to ``WAIT`` seconds for the SMS, and when none comes
gives the number up (``session.replace()``: cancelled in the background, the next-best
offer ordered) until a code arrives. The strategies:

- ``fixed``: one country always (the baseline: what a user who picked a country does);
- ``price``, ``quality``, ``balanced``: ``client.activation("telegram", None,
  prefer=...)``, every country that sells it.

Money per code is what the emulator billed (numbers cancelled or expired without an SMS
cost nothing; a code that reaches a number already given up is finalized, billed and
counted as ``late_codes``) over the codes the workers got; time to code is virtual
seconds from a worker's first order to its code, mean and 90th percentile. Ratios are
against ``fixed``. The market is seeded: a run is the same each time. Prints a table,
then one JSON object on the last line. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from platfone_async import ActivationEndedError, WaitTimeoutError  # noqa: E402
from platfone_async.testing import Offer, PlatfoneEmulator, SmsPolicy, VirtualClock  # noqa: E402

SERVICE = "telegram"
#: country: (price in cents, quality, stock)
MARKET = {
    "us": (25, 0.25, 100_000),  # cheap, mostly silent
    "fr": (45, 0.55, 100_000),  # the baseline's country: middling, plenty
    "de": (60, 0.80, 150),  # good value, little stock
    "pl": (70, 0.85, 100_000),
    "uk": (110, 0.92, 100_000),  # dear and reliable
}
FIXED = "fr"
WORKERS = 20
WAIT = 150.0  # seconds a number may stay silent before it is replaced
SMS_DELAY = (10.0, 90.0)  # drawn, then stretched by (2 - quality)


def _market(seed: int) -> PlatfoneEmulator:
    emulator = PlatfoneEmulator(
        clock=VirtualClock(),
        balance=10_000_000,
        seed=seed,
        rate_limits=None,
        max_active=None,
        success_rate_check=False,
        sms_policy=SmsPolicy(delay=SMS_DELAY, follow_quality=True),
    )
    for country_id in emulator.catalog.countries:
        emulator.catalog.set_stock(SERVICE, country_id, 0)
    for country_id, (price, quality, stock) in MARKET.items():
        emulator.catalog.set_offers(
            SERVICE, country_id, [Offer(price, quality, stock, cancel_after=60)]
        )
    return emulator


async def _worker(
    emulator: PlatfoneEmulator, strategy: str, codes: int, times: list[float], tried: list[int]
) -> None:
    clock = emulator.clock
    country = FIXED if strategy == "fixed" else None
    prefer: Any = "balanced" if strategy == "fixed" else strategy
    async with emulator.client(
        rate_limits=None, max_active_activations=None, success_rate_guard="off"
    ) as client:
        for _ in range(codes):
            start, numbers = clock.time(), 1
            async with client.activation(SERVICE, country, prefer=prefer) as session:
                while True:
                    try:
                        await session.wait_for_sms(timeout=WAIT)
                        break
                    except (WaitTimeoutError, ActivationEndedError):
                        await session.replace()
                        numbers += 1
            times.append(clock.time() - start)
            tried.append(numbers)


async def _run(strategy: str, total: int, seed: int) -> dict[str, Any]:
    emulator = _market(seed)
    clock = emulator.clock
    assert isinstance(clock, VirtualClock)
    times: list[float] = []
    tried: list[int] = []
    began = time.perf_counter()
    async with clock.autojump(), anyio.create_task_group() as group:
        for index in range(WORKERS):
            share = total // WORKERS + (1 if index < total % WORKERS else 0)
            group.start_soon(_worker, emulator, strategy, share, times, tried)
    books = emulator.ledger()
    ordered = sorted(times)
    return {
        "codes": len(times),
        "money_per_code": books["amount_billed"] / len(times),
        "time_to_code": statistics.fmean(times),
        "time_to_code_p90": ordered[int(0.9 * (len(ordered) - 1))],
        "numbers_per_code": statistics.fmean(tried),
        "billed": books["billed"],
        # Codes that reached a number already given up: finalized (billed) and said.
        "late_codes": books["billed"] - len(times),
        "orders": books["orders_placed"],
        "wall_seconds": time.perf_counter() - began,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 codes instead of 200")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # A late code's WARNING, once per number: the table counts them (late_codes).
    logging.getLogger("platfone_async").setLevel(logging.ERROR)
    total = 40 if args.quick else 200
    results = {
        strategy: anyio.run(_run, strategy, total, args.seed)
        for strategy in ("fixed", "price", "quality", "balanced")
    }
    base = results["fixed"]
    for result in results.values():
        result["money_ratio"] = result["money_per_code"] / base["money_per_code"]
        result["time_ratio"] = result["time_to_code"] / base["time_to_code"]
    print(f"{total} codes, {WORKERS} workers, a number replaced after {WAIT:.0f} s of silence")
    print(
        f"market ({SERVICE}): "
        + ", ".join(f"{c} {p}c q{q} x{s}" for c, (p, q, s) in MARKET.items())
    )
    print(
        f"{'strategy':<10}{'$/code':>9}{'ratio':>7}{'s to code':>11}{'p90':>7}{'ratio':>7}"
        f"{'numbers':>9}"
    )
    for name, r in results.items():
        label = f"fixed {FIXED}" if name == "fixed" else name
        print(
            f"{label:<10}{r['money_per_code'] / 100:>9.3f}{r['money_ratio']:>7.2f}"
            f"{r['time_to_code']:>11.0f}{r['time_to_code_p90']:>7.0f}{r['time_ratio']:>7.2f}"
            f"{r['numbers_per_code']:>9.2f}"
        )
    print(json.dumps({"benchmark": "shopping", "codes": total, "strategies": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
