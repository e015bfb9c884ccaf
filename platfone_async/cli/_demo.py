"""``platfone demo``: a whole activation against an embedded emulator - no key, no network."""

from __future__ import annotations

from collections.abc import Callable

from platfone_async import Activation, AsyncPlatfone, Balance, Clock
from platfone_async.testing import PlatfoneEmulator, SmsPolicy

from ._output import dollars, local_time, phone

__all__ = ["run_demo"]

SERVICE = "telegram"
COUNTRY = "uk"
_RECEIVED = ("smsReceived", "retryReceived")


def _show_balance(out: Callable[[str], None], balance: Balance) -> None:
    out(
        f"Balance: {dollars(balance.total)} total, {dollars(balance.reserved)} reserved, "
        f"{dollars(balance.available)} available"
    )


async def run_demo(
    out: Callable[[str], None] = print,
    *,
    sms_delay: float = 2.5,
    poll_interval: float = 0.5,
    clock: Clock | None = None,
) -> int:
    """Order a number, wait for its SMS, finalize; return the exit status.

    ``clock``: the emulator's and the client's (tests pass a virtual one); real time
    by default.
    """
    emulator = PlatfoneEmulator(clock=clock, sms_policy=SmsPolicy(delay=sms_delay))
    out(f"Emulator running in-process at {emulator.base_url} (nothing leaves this machine)")
    async with emulator.client() as client:
        _show_balance(out, await client.get_balance())
        info = await client.get_price(SERVICE, COUNTRY)
        out(
            f"Price of {SERVICE} in {COUNTRY}: {dollars(info.price.suggested)} suggested "
            f"({dollars(info.price.min)}-{dollars(info.price.max)}), "
            f"quality {info.quality.avg:.2f}, {info.count} numbers in stock"
        )
        activation = await client.create_activation(
            SERVICE, COUNTRY, max_price=info.price.suggested
        )
        out(
            f"Ordered {phone(activation.phone)} for {dollars(activation.price)} "
            f"(activation {activation.activation_id}, expires {local_time(activation.expire_at)})"
        )
        activation = await _wait_for_sms(client, activation, out, poll_interval)
        if str(activation.sms_status) not in _RECEIVED:
            out(f"No SMS: the activation is {activation.activation_status}")
            return 1
        out(f"SMS received! Code: {activation.sms_code}  ({activation.sms_text!r})")
        await client.finalize_activation(activation)
        out("Finalized (the price was billed when the SMS arrived).")
        _show_balance(out, await client.get_balance())
    return 0


async def _wait_for_sms(
    client: AsyncPlatfone,
    activation: Activation,
    out: Callable[[str], None],
    interval: float,
) -> Activation:
    clock = client.clock
    started = clock.monotonic()
    while str(activation.activation_status) == "active":
        await clock.sleep(interval)
        activation = await client.get_activation(activation)
        if str(activation.sms_status) in _RECEIVED:
            break
        waited = clock.monotonic() - started
        out(f"  waiting for the SMS... {waited:4.1f} s ({activation.sms_status})")
    return activation
