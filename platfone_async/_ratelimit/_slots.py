"""The 20-active-activations limit: a :class:`Slot` per order, then per activation.

An order takes a slot before it leaves (first come, first served, optionally with a
timeout), binds it to the activation the server opened or releases it when the order
failed; a bound slot comes back when the SDK sees the activation end or by itself after
its ``expire_at`` (see ``_memory.SlotBook``). :class:`ActivationSlots` is that limit in
this process alone, over a private memory store.
"""

from __future__ import annotations

import itertools
from datetime import datetime

from .._clock import Clock
from ._memory import SlotBook
from ._state import SlotsState
from ._store import Take
from ._wait import ErrorSource, Gate

__all__ = ["ActivationSlots", "Slot", "SlotToken", "unix"]


def unix(moment: float | datetime) -> float:
    """Unix seconds of ``moment`` (an aware datetime, or Unix seconds already)."""
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


class Slot:
    """One slot, held from before an order until its activation ends; ``member`` names
    it in the store (the order's name, then its activation's id)."""

    __slots__ = ("activation_id", "expire_at", "member", "released")

    def __init__(self, member: str) -> None:
        self.member = member
        self.activation_id: str | None = None
        self.expire_at: float | None = None
        self.released = False

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        return f"<{type(self).__name__} {state} activation_id={self.activation_id!r}>"

    def bound_to(self, activation_id: str, expire_at: float | None) -> str:
        """Note the activation the slot now belongs to; the name it had."""
        if self.released:
            raise RuntimeError("this activation slot was already released")
        member = self.member
        self.member = self.activation_id = activation_id
        self.expire_at = expire_at
        return member


class SlotToken(Slot):
    """A slot of :class:`ActivationSlots` (bound and released on the spot)."""

    __slots__ = ("_slots",)

    def __init__(self, slots: ActivationSlots, member: str) -> None:
        super().__init__(member)
        self._slots = slots

    @property
    def released(self) -> bool:
        """Given back: by hand, or as its activation was seen to end or expired."""
        return _RELEASED.__get__(self) or not self._slots.book.holds(self.member)

    @released.setter
    def released(self, value: bool) -> None:
        _RELEASED.__set__(self, value)

    def bind(self, activation_id: str, expire_at: float | datetime | None) -> None:
        """Tie the slot to the activation the order opened (expiry as Unix seconds or UTC).

        ``expire_at=None`` means no automatic return. Raises RuntimeError once released.
        """
        expire = None if expire_at is None else unix(expire_at)
        member = self.bound_to(activation_id, expire)
        self._slots.book.bind(member, activation_id, expire)
        self._slots.gate.wake_head()

    def release(self) -> None:
        """Give the slot back (the order failed, or the activation ended). Idempotent."""
        if not self.released:
            self.released = True
            self._slots.book.release(self.member)
            self._slots.gate.wake_head()


_RELEASED = Slot.__dict__["released"]


class ActivationSlots:
    """``capacity`` slots for active activations in this process.

    ``acquire(timeout=None)`` waits, first come first served, for a slot and returns a
    :class:`SlotToken`; with a ``timeout`` (clock seconds; 0 means do not wait) it raises
    :class:`TimeoutError` when none came in time.
    """

    def __init__(
        self,
        capacity: int = 20,
        *,
        clock: Clock,
        expiry_grace: float = 5.0,
        probe_interval: float = 10.0,
    ) -> None:
        self.book = SlotBook(
            capacity, clock=clock, expiry_grace=expiry_grace, probe_interval=probe_interval
        )
        self.gate = Gate(clock, "activation slots", "a free slot", level=20)
        self._clock = clock

    def __repr__(self) -> str:
        return repr(self.book).replace("SlotBook", "ActivationSlots")

    @property
    def capacity(self) -> int:
        return self.book.capacity

    async def acquire(self, timeout: float | None = None) -> SlotToken:
        """Wait for a free slot (FIFO); TimeoutError after ``timeout`` clock seconds."""
        deadline = None if timeout is None else self._clock.monotonic() + timeout
        member = await self.gate.take(self._attempt, self._give_back, _nothing, deadline=deadline)
        return SlotToken(self, member)

    async def _attempt(self, want: int) -> Take:
        return self.book.take(f"order:{id(self)}:{next(_numbers)}")

    async def _give_back(self, member: str) -> None:
        self.book.release(member)
        self.gate.wake_head()

    def observe(
        self, activation_id: str, *, ended: bool, expire_at: float | datetime | None = None
    ) -> None:
        """Note a state of an activation: ``ended`` releases its slot; otherwise a changed
        ``expire_at`` moves its automatic return. Activations not bound here are ignored."""
        expire = None if expire_at is None else unix(expire_at)
        if self.book.observe(activation_id, ended=ended, expire_at=expire):
            self.gate.wake_head()

    def server_full(self, token: SlotToken | None = None) -> None:
        """The server refused an order with TooManyActivations (``token``: its slot)."""
        member = None
        if token is not None and not token.released:
            token.released = True
            member = token.member
        self.book.server_full(member)
        self.gate.wake_head()

    def learn_server_count(self, active: int) -> None:
        """The server holds ``active`` activations on this key, ours included."""
        self.book.learn_server_count(active)
        self.gate.wake_head()

    def interrupt(self, error: ErrorSource) -> None:
        """Make every caller queued right now raise ``error`` (an account-wide block)."""
        self.gate.interrupt(error)

    def state(self) -> SlotsState:
        """A snapshot of the slots and the queue."""
        return self.book.state(self.gate.waiters)


async def _nothing() -> None:
    return None


_numbers = itertools.count()
