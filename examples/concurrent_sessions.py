"""Twenty numbers at once, each in its own session: limits and settling are the SDK's job.

    python examples/concurrent_sessions.py [N]

Each task holds one number until its SMS comes or the wait ends. The client keeps every
request within the API's per-minute limits and at most 20 numbers active at a time (the
account's limit), so more tasks than that simply wait for a free slot. With
``PLATFONE_API_KEY`` set this orders N (20) real numbers; otherwise it runs against the
embedded emulator, where SMS come for about 3 in 4 numbers.

On a fresh key, expect WARNINGs from the tenth order on: the client guards the success
rate below which Platfone blocks an account for 24 h, and counts an order still waiting
for its SMS as a miss (``success_rate_guard="raise"`` would stop ordering instead).
"""

from __future__ import annotations

import sys
from collections import Counter

import anyio
from _connect import connect, emulated

from platfone_async import AsyncPlatfone, SessionOutcome, WaitTimeoutError
from platfone_async.testing import PlatfoneEmulator, SmsPolicy, VirtualClock


async def one_signup(
    client: AsyncPlatfone, n: int, outcomes: Counter[SessionOutcome | None]
) -> None:
    async with client.activation("telegram", "uk") as session:
        try:
            activation = await session.wait_for_sms(timeout=300)
        except WaitTimeoutError:
            print(f"#{n:2}: no SMS in 5 minutes; the session cancels the number")
        else:
            print(f"#{n:2}: +{activation.phone} got {activation.sms_code}")
    outcomes[session.outcome] += 1


async def main(count: int) -> None:
    emulator = None
    if emulated():
        # SMS come 20-60 s after the order for 75 % of the numbers, none for the rest.
        policy = SmsPolicy(delay=(20, 60), probability=0.75)
        emulator = PlatfoneEmulator(clock=VirtualClock(), sms_policy=policy)
    outcomes: Counter[SessionOutcome | None] = Counter()
    async with connect(emulator) as client, anyio.create_task_group() as tg:
        for n in range(count):
            tg.start_soon(one_signup, client, n, outcomes)
    print(", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items(), key=str)))


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 20)
