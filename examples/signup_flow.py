"""Your own code: verify a sign-up with a rented number. ``test_signup_flow.py`` tests it.

    python examples/signup_flow.py

With ``PLATFONE_API_KEY`` set this orders one real Telegram number in the UK; otherwise it
runs against the embedded emulator.
"""

from __future__ import annotations

import anyio
from _connect import connect

from platfone_async import AsyncPlatfone, SessionOutcome, WaitTimeoutError


async def verify_signup(client: AsyncPlatfone, service: str, country: str) -> str | None:
    """The code the service sent to a fresh number, or None when none came in 5 minutes.

    The number is finalized when the code came and cancelled (or left to expire) when not.
    """
    async with client.activation(service, country) as session:
        print("enter this number in the sign-up form: +" + session.activation.phone)
        try:
            activation = await session.wait_for_sms(timeout=300)
        except WaitTimeoutError:
            return None
    assert SessionOutcome.FINALIZED == session.outcome
    return activation.sms_code


async def main() -> None:
    async with connect() as client:
        print("code:", await verify_signup(client, "telegram", "uk"))


if __name__ == "__main__":
    anyio.run(main)
