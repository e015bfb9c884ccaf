"""Automatic SMS: a policy per service, and the queue of deliveries it has promised."""

from __future__ import annotations

import heapq
import itertools
import random

import attrs

__all__ = ["DueSms", "SmsPolicy", "SmsScheduler"]


def _check_delay(
    instance: SmsPolicy, attribute: object, value: float | tuple[float, float]
) -> None:
    low, high = value if isinstance(value, tuple) else (value, value)
    if not 0 <= low <= high:
        raise ValueError(f"delay must be >= 0 (a number or a (low, high) range), got {value!r}")


def _check_probability(instance: SmsPolicy, attribute: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"probability must be within 0..1, got {value!r}")


@attrs.frozen
class SmsPolicy:
    """When the emulator delivers an SMS by itself.

    Every time an activation starts waiting (on order, and after a retry) the SMS
    arrives ``delay`` seconds later (a number, or a ``(low, high)`` range drawn
    uniformly) with chance ``probability``; otherwise it never comes and the activation
    expires. The code has ``code_length`` digits; ``text`` is formatted with ``code``
    and ``service_id``. Deliveries happen when the emulator's clock passes their time:
    on the next request, or on :meth:`PlatfoneEmulator.tick`.

    ``follow_quality=True`` makes it a market: the number's offer decides, as real
    suppliers do. The chance becomes ``probability * quality`` (a 0.9 offer delivers
    nine times in ten, a 0.2 one twice), and the delay is stretched by
    ``2 - quality`` (a 0.9 offer answers in 1.1 times the drawn delay, a 0.2 one in 1.8).
    """

    delay: float | tuple[float, float] = attrs.field(default=2.5, validator=_check_delay)
    probability: float = attrs.field(default=1.0, validator=_check_probability)
    code_length: int = 6
    text: str = "Your {service_id} verification code is {code}"
    follow_quality: bool = False

    def draw_delay(self, rng: random.Random, quality: float = 1.0) -> float:
        low, high = self.delay if isinstance(self.delay, tuple) else (self.delay, self.delay)
        drawn = low if low == high else rng.uniform(low, high)
        return drawn * (2.0 - quality) if self.follow_quality else drawn

    def chance(self, quality: float) -> float:
        """The chance that a wait on a number of this ``quality`` gets its SMS."""
        return self.probability * quality if self.follow_quality else self.probability

    def draw_code(self, rng: random.Random) -> str:
        return "".join(rng.choice("0123456789") for _ in range(self.code_length))


@attrs.frozen
class DueSms:
    """A delivery the policy promised: to ``activation_id``'s wait number ``round``."""

    due: float
    activation_id: str
    round: int
    code: str
    text: str


class SmsScheduler:
    """Decides deliveries with the policies and hands them out once they are due."""

    def __init__(self, rng: random.Random, default: SmsPolicy | None = None) -> None:
        self._rng = rng
        self.default = default
        self.per_service: dict[str, SmsPolicy | None] = {}
        self._queue: list[tuple[float, int, DueSms]] = []
        self._seq = itertools.count()

    def policy_for(self, service_id: str) -> SmsPolicy | None:
        return self.per_service.get(service_id, self.default)

    def waiting_started(
        self, activation_id: str, service_id: str, rnd: int, now: float, quality: float = 1.0
    ) -> None:
        """An activation (from an offer of ``quality``) waits for its SMS number ``rnd``:
        maybe promise one."""
        policy = self.policy_for(service_id)
        if policy is None or self._rng.random() >= policy.chance(quality):
            return
        code = policy.draw_code(self._rng)
        text = policy.text.format(code=code, service_id=service_id)
        due = now + policy.draw_delay(self._rng, quality)
        sms = DueSms(due, activation_id, rnd, code, text)
        heapq.heappush(self._queue, (sms.due, next(self._seq), sms))

    def pop_due(self, now: float) -> DueSms | None:
        if self._queue and self._queue[0][0] <= now:
            return heapq.heappop(self._queue)[2]
        return None

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None
