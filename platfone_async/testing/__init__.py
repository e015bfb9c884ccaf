"""A stateful fake Platfone for tests, demos and offline development.

``PlatfoneEmulator`` follows the reference's rules (catalog and prices, balances,
the activation state machine, expiry, the 20-active limit, the success-rate block,
rolling-window rate limits, 409 continuation, ETags, reports) and lets a test steer
it: deliver an SMS, move its clock, set a balance, review a report, inject faults.

    emulator = PlatfoneEmulator(clock=VirtualClock())
    async with emulator.client() as client:
        activation = await client.create_activation("telegram", "uk")
        emulator.deliver_sms(activation.activation_id, "123456")

Served (``python -m platfone_async.testing serve``), the same controls answer over HTTP
under ``/_emulator/`` (:data:`OPERATIONS`), for apps in any language; the pytest plugin
(``platfone_async.testing.pytest_plugin``) offers the emulator and clients as fixtures.
"""

from __future__ import annotations

from ._catalog import Catalog, Country, Offer, Service
from ._clock import VirtualClock
from ._control import CONTROL_PREFIX, OPERATIONS, Operation
from ._emulator import DEFAULT_BASE_URL, PlatfoneEmulator
from ._faults import Fault
from ._records import EmulatorEvent, RequestRecord
from ._sms import SmsPolicy
from ._webhooks import EmulatorWebhooks, WebhookAttempt

__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_BASE_URL",
    "OPERATIONS",
    "Catalog",
    "Country",
    "EmulatorEvent",
    "EmulatorWebhooks",
    "Fault",
    "Offer",
    "Operation",
    "PlatfoneEmulator",
    "RequestRecord",
    "Service",
    "SmsPolicy",
    "VirtualClock",
    "WebhookAttempt",
]

for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__") and isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
