"""Client-side rate limiting and every other per-key promise, over one store seam.

- ``_store`` - :class:`KeyStore`, the protocol naming every operation a key's state
  needs, and :class:`RateLimitBackend`, which opens a key's store;
- ``_memory`` - the memory store (the default); ``_sqlite`` - one host's processes
  through one file; ``_redis`` - a fleet through Redis (which it imports on first use).
  The package loads neither shared store (see ``platfone_async``);
- ``_wait`` - :class:`~._wait.Gate`, the one wait loop (this process's FIFO over a
  store's non-waiting ``take``);
- ``_window`` / ``_slots`` - an endpoint's limiter and the activation slots over it;
- ``_success`` - the success-rate guard; ``_state`` - the dashboards' snapshots;
- ``_keys`` - :class:`KeyLimits`, the one door for the pipeline and the order flow, and
  the process-wide registry of keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._keys import DEFAULT_BACKEND, KeyLimits, get_key_limits, key_fingerprint, offer_of
from ._memory import InMemoryBackend
from ._slots import ActivationSlots, Slot, SlotToken
from ._state import (
    KeyLimitsState,
    LimiterState,
    SlotsState,
    SuccessRateCheck,
    SuccessRateState,
)
from ._store import Flight, JournalEntry, KeyStore, RateLimit, RateLimitBackend
from ._success import GuardMode, SuccessRateTracker
from ._wait import ErrorSource, for_held_number
from ._window import SlidingWindowLimiter

__all__ = [
    "DEFAULT_BACKEND",
    "DOCUMENTED_RATE_LIMITS",
    "ActivationSlots",
    "ErrorSource",
    "Flight",
    "GuardMode",
    "InMemoryBackend",
    "JournalEntry",
    "KeyLimits",
    "KeyLimitsState",
    "KeyStore",
    "LimiterState",
    "RateLimit",
    "RateLimitBackend",
    "SlidingWindowLimiter",
    "Slot",
    "SlotToken",
    "SlotsState",
    "SuccessRateCheck",
    "SuccessRateState",
    "SuccessRateTracker",
    "for_held_number",
    "get_key_limits",
    "key_fingerprint",
    "offer_of",
]

#: The per-endpoint limits of the reference's "Rate limits" table, by method name.
DOCUMENTED_RATE_LIMITS: Mapping[str, RateLimit | None] = {
    "get_balance": RateLimit(300, 60),
    "create_activation": RateLimit(300, 60),
    "retry_activation": RateLimit(50, 60),
    "cancel_activation": RateLimit(50, 60),
    "get_activation_history": RateLimit(6, 60),
    "get_activation": RateLimit(300, 60),
    "get_countries": RateLimit(15, 60),
    "get_services": RateLimit(15, 60),
    "get_prices_by_country": RateLimit(6, 60),
    "get_prices_by_service": RateLimit(6, 60),
    "get_price": RateLimit(60, 60),
}
