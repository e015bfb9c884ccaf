"""Order a number, wait for its SMS, and settle it - the async quickstart.

    python examples/quickstart_async.py

With ``PLATFONE_API_KEY`` set this orders one real Telegram number in the UK (about a
dollar, billed only if the SMS comes); otherwise it runs against the embedded emulator.
"""

from __future__ import annotations

import anyio
from _connect import connect

from platfone_async import AsyncPlatfone


async def main() -> None:
    async with connect() as client:
        await order_and_read_code(client)


async def order_and_read_code(client: AsyncPlatfone) -> None:
    balance = await client.get_balance()
    print(f"{balance.available / 100:.2f} USD available")
    price = await client.get_price("telegram", "uk")
    print(f"telegram in uk: {price.price.suggested} cents suggested")
    # The session orders, and settles the number whatever ends the block: finalized
    # when the SMS came, cancelled when none did (once the API allows), else expired.
    async with client.activation("telegram", "uk", price_ceiling=price.price.max) as session:
        print("send the code to +" + session.activation.phone)
        activation = await session.wait_for_sms(timeout=600)
        print("code:", activation.sms_code)
    print(f"outcome: {session.outcome}")


if __name__ == "__main__":
    anyio.run(main)
