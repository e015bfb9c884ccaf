"""The blocking client, as in a notebook or a plain script: no ``async``, no event loop.

    python examples/quickstart_sync.py

``Platfone`` runs its own event loop in a background thread, so the same lines work in a
Jupyter cell. With ``PLATFONE_API_KEY`` set this orders one real Telegram number in the
UK; otherwise it runs against the embedded emulator.
"""

from __future__ import annotations

from _connect import connect_sync, emulated

from platfone_async import Platfone


def main() -> None:
    with connect_sync() as client:
        order_and_read_code(client)


def order_and_read_code(client: Platfone) -> None:
    print(client.get_balance().available, "cents available")
    with client.activation("telegram", "uk") as session:
        print("send the code to +" + session.activation.phone)
        # progress=True shows a line with the time left, rewritten each second.
        interval = 1.0 if emulated() else 10.0  # the API asks for 10 s between polls
        activation = session.wait_for_sms(timeout=600, interval=interval)
        print("code:", activation.sms_code)
    print(f"outcome: {session.outcome}")
    for past in client.iter_activation_history(limit=5):
        print(past.activation_id, f"{past.activation_status}")
        break  # the newest is enough here


if __name__ == "__main__":
    main()
