"""Settling a number the SDK opened: finalize it, cancel it, or say why it is left.

One coroutine, :func:`settle`, for every place that lets go of a number: leaving an
``activation()`` block, crash recovery, a session replacing its number. Its rule: a
number stays watched until it is settled, and what is learned on the way - above all a
code that was paid for - reaches someone, in words that match the server.

- A number whose SMS came and was billed is finalized; one still waiting for its first
  SMS is cancelled once ``cancelable_after`` allows. While it waits for that moment it
  keeps watching (polls, and pushed webhooks wake it): an SMS that arrives meanwhile is
  finalized and its code delivered - to the state returned, to a WARNING naming the
  number, and to the client's ``on_late_sms`` callback.
- Finalize, cancel and the reads between them are tried again after a transient
  failure (a connection error, a timeout, a 5xx, a 429, an undecodable answer, the
  limits backend failing) with capped backoff, until they succeed, the state makes them
  pointless, or ``expire_at`` plus :data:`SETTLE_MARGIN` passes. A :class:`ConflictError`
  is judged by the state the server then shows.
- The state is not read again before acting when it is known: a billed SMS is finalized
  and a number cancellable now is cancelled at once (a 409 says when that was wrong).
  A number about to be left to expire is looked at once more first, for an SMS no one
  has seen.
- Whatever interrupts it (a second Ctrl-C, the cancellation of its task) ends it at
  once, and it says what it leaves, as the server last showed it: "released" only for a
  price still reserved, "billed" with the code when the SMS came.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from ._enums import ActivationStatus, BillingStatus, SmsStatus
from ._errors import ConflictError
from ._models import Activation, publish
from ._progress import local_time, phone_of
from ._ratelimit import for_held_number
from ._watch import is_transient, poll_until

if TYPE_CHECKING:
    from ._client import AsyncPlatfone

__all__ = ["SessionOutcome", "Settled", "describe_left", "is_journaled", "outcome_of", "settle"]

logger = logging.getLogger("platfone_async")

T = TypeVar("T")

#: A cancel waits this long past ``cancelable_after``, for clock skew.
CANCEL_MARGIN = 1.0
#: A wait for ``cancelable_after`` longer than this is announced (as a warning).
NOTICE_AFTER = 1.5
#: Settling gives up this long after ``expire_at`` (the number has ended by itself).
SETTLE_MARGIN = 5.0
#: The first pause after a failed attempt, and the longest.
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
#: After this many failures in a row, a failure is logged as a warning.
_WARN_AFTER_FAILURES = 3

_SMS_SEEN = frozenset({SmsStatus.SMS_RECEIVED, SmsStatus.RETRY_REQUESTED, SmsStatus.RETRY_RECEIVED})


class SessionOutcome(str, enum.Enum):
    """How an activation session ended (``ActivationSession.outcome``).

    - ``FINALIZED``: it got its SMS and was finalized, on leaving the block or by
      :meth:`ActivationSession.finalize` inside it.
    - ``CANCELED``: no SMS came; it was cancelled, on leaving or by
      :meth:`ActivationSession.cancel`.
    - ``LEFT_TO_EXPIRE``: still active, and it could be neither finalized nor cancelled
      (``cancelable_after`` is null or falls after ``expire_at``, an SMS arrived but is
      not billed, or settling was cut short); it ends by itself at ``expire_at``.
    - ``ALREADY_ENDED``: it was no longer active when the block ended, through nothing
      the session did (it expired, or was finalized or cancelled elsewhere);
      ``session.activation.activation_status`` says how.
    """

    FINALIZED = "finalized"
    CANCELED = "canceled"
    LEFT_TO_EXPIRE = "left_to_expire"
    ALREADY_ENDED = "already_ended"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Settled:
    """What settling ended with: the last state seen, and how it ended."""

    activation: Activation
    outcome: SessionOutcome


#: What ``settle`` calls with each newer state it learns.
OnState = Callable[[Activation], object]


async def settle(
    client: AsyncPlatfone,
    activation: Activation,
    *,
    interrupted: bool = False,
    attempted: SessionOutcome | None = None,
    interval: float = 10.0,
    on_state: OnState | None = None,
    code_seen: bool = True,
) -> Settled:
    """Settle ``activation`` (the last state its holder saw) and return how it ended.

    ``interrupted``: a Ctrl-C ended the block (the notice says "Ctrl-C again"; at exit,
    where the block ends with SystemExit, it says "Ctrl-C").
    ``attempted``: what the holder last tried (a finalize or cancel whose answer may have
    been lost), so that an activation found in that state counts as done by it.
    ``interval``: seconds between polls while waiting for ``cancelable_after``.
    ``on_state``: called with each newer state (so an interrupted holder knows it).
    ``code_seen``: whether the holder saw the code ``activation`` shows, if any; False
    (a number recovered from a crash: no one did) delivers it as a late code at once.

    Raises:
        PlatfoneError: A failure that is not transient (the key refused, the number
            unknown, ...): settling it is not possible.
    """
    settling = _Settling(client, activation, attempted, interval, on_state)
    if not code_seen and settling.seen_code is not None:
        _deliver_late(client, activation)
    return await settling.run(interrupted)


class _Settling:
    """One number being settled: its latest state and what was tried on it."""

    def __init__(
        self,
        client: AsyncPlatfone,
        activation: Activation,
        attempted: SessionOutcome | None,
        interval: float,
        on_state: OnState | None,
    ) -> None:
        self.client = client
        self.clock = client.clock
        self.state = activation
        self.attempted = attempted
        self.interval = interval
        self.on_state = on_state
        # The code the holder saw (none: a code found now is late).
        self.seen_code = _code_of(activation)
        self.deadline = activation.expire_at.timestamp() + SETTLE_MARGIN
        self.confirmed = False  # whether self.state was read during this settling

    async def run(self, interrupted: bool) -> Settled:
        try:
            return await self._settle(interrupted)
        except _DeadlinePassed:
            return self._gave_up()
        except BaseException as error:
            if not isinstance(error, Exception):
                # Only an interruption reaches through a shield: leave at once, truthfully.
                journaled = is_journaled(self.client)
                logger.warning("%s", describe_left(self.state, self.attempted, journaled))
            raise

    async def _settle(self, interrupted: bool) -> Settled:
        conflicts = 0
        if self.state.is_active and self.clock.time() >= self.state.expire_at.timestamp():
            await self._refresh()  # a state from before expire_at tells nothing now
        while True:
            state = self.state
            if not state.is_active:
                return Settled(state, outcome_of(state, self.attempted))
            action = settling_action(state)
            if action is SessionOutcome.LEFT_TO_EXPIRE:
                if self.confirmed:
                    return Settled(state, action)
                await self._refresh()  # an SMS no one has seen may have come
                continue
            if action is SessionOutcome.CANCELED and not await self._wait_until_cancelable(
                interrupted
            ):
                continue  # the state changed while waiting: look at it again
            if await self._act(action, conflicts):
                return Settled(self.state, action)
            conflicts += 1  # a 409: the refreshed state says what to do now

    async def _act(self, action: SessionOutcome, conflicts: int) -> bool:
        """Finalize or cancel; True when done, False after a 409 (state refreshed)."""
        aid = self.state.activation_id
        self.attempted = action
        if conflicts:  # the server refused this once already: do not hammer it
            await self._pause(conflicts)
        if action is SessionOutcome.FINALIZED:
            what, call = "finalize", self.client.finalize_activation
        else:
            what, call = "cancel", self.client.cancel_activation
        try:
            await self._retrying(what, lambda: call(aid))
        except ConflictError:
            # It changed under us (an SMS arrived just before the cancel, it expired):
            # look again and do what its new state calls for.
            await self._refresh()
            return False
        if action is SessionOutcome.FINALIZED:
            self._learn(attrs.evolve(self.state, activation_status=ActivationStatus.FINALIZED))
        else:
            self._learn(
                attrs.evolve(
                    self.state,
                    activation_status=ActivationStatus.CANCELED,
                    billing_status=BillingStatus.RELEASED,
                )
            )
        return True

    async def _wait_until_cancelable(self, interrupted: bool) -> bool:
        """Watch until ``cancelable_after`` (plus a margin) passes; True then, False if
        the state changed first (an SMS, an end) - it is then in ``self.state``."""
        state = self.state
        assert state.cancelable_after is not None
        allowed = state.cancelable_after.timestamp()
        target = allowed + CANCEL_MARGIN
        if target >= state.expire_at.timestamp():
            target = allowed
        delay = target - self.clock.time()
        if delay <= 0:
            return True
        if delay > NOTICE_AFTER:
            logger.warning(
                "cancelling %s at %s, in %d s; Ctrl-C %sto leave it to expire"
                " - its reserved price is released then",
                phone_of(state),
                local_time(target),
                math.ceil(delay),
                "again " if interrupted else "",
            )
        found = await poll_until(
            self.client, state, target, interval=self.interval, on_state=self._learn
        )
        if found is not None:
            self.confirmed = True
        return found is None

    async def _refresh(self) -> None:
        """Read the state now (tried again after transient failures)."""
        aid = self.state.activation_id
        self._learn(await self._retrying("read", lambda: self.client.get_activation(aid)))
        self.confirmed = True

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, tried again after each transient failure until the deadline
        (then :class:`_DeadlinePassed`); any other error is raised."""
        failures = 0
        while True:
            try:
                with for_held_number():
                    return await call()
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                _log_failure(self.state, what, error, failures)
                if self.clock.time() >= self.deadline:
                    raise _DeadlinePassed from error
                await self._pause(failures)

    async def _pause(self, failures: int) -> None:
        """Capped exponential backoff with jitter, never past the deadline."""
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (failures - 1))
        delay *= 0.75 + 0.5 * self.client._rng.random()
        await self.clock.sleep(max(0.0, min(delay, self.deadline - self.clock.time())))

    def _learn(self, state: Activation) -> None:
        """Keep a newer state; a code no one has seen is delivered at once."""
        if state == self.state:
            return
        self.state = state
        if self.on_state is not None:
            self.on_state(state)
        code = _code_of(state)
        if code is not None and code != self.seen_code:
            self.seen_code = code
            _deliver_late(self.client, state)

    def _gave_up(self) -> Settled:
        logger.warning(
            "could not settle %s before it expired at %s; %s",
            phone_of(self.state),
            local_time(self.state.expire_at.timestamp()),
            _money_left(self.state),
        )
        return Settled(self.state, SessionOutcome.LEFT_TO_EXPIRE)


class _DeadlinePassed(Exception):
    """``expire_at`` plus the margin passed while settling still failed."""


def _log_failure(state: Activation, what: str, error: Exception, failures: int) -> None:
    level = logging.WARNING if failures == _WARN_AFTER_FAILURES else logging.DEBUG
    logger.log(
        level,
        "settling %s: %s failed (%d in a row), trying again: %s: %s",
        phone_of(state),
        what,
        failures,
        type(error).__name__,
        error,
    )


def outcome_of(state: Activation, attempted: SessionOutcome | None) -> SessionOutcome:
    """The outcome ``state`` shows: still active, it is left to expire; ended as the
    holder ``attempted`` (a finalize or cancel), it is that; ended otherwise, not ours."""
    if state.is_active:
        return SessionOutcome.LEFT_TO_EXPIRE
    ours = {
        SessionOutcome.FINALIZED: ActivationStatus.FINALIZED,
        SessionOutcome.CANCELED: ActivationStatus.CANCELED,
    }
    if attempted in ours and state.activation_status == ours[attempted]:
        return attempted
    return SessionOutcome.ALREADY_ENDED


def settling_action(state: Activation) -> SessionOutcome:
    """What settling does to an active activation in ``state``."""
    if state.sms_status in _SMS_SEEN:
        if state.billing_status == BillingStatus.BILLED:
            return SessionOutcome.FINALIZED
        return SessionOutcome.LEFT_TO_EXPIRE
    cancelable_after = state.cancelable_after
    if (
        state.sms_status == SmsStatus.SMS_REQUESTED
        and cancelable_after is not None
        and cancelable_after < state.expire_at
    ):
        return SessionOutcome.CANCELED
    return SessionOutcome.LEFT_TO_EXPIRE


def _code_of(state: Activation) -> str | None:
    """The code ``state`` shows (with what tells a retry's code apart), if any."""
    if state.sms_status not in _SMS_SEEN or not (state.sms_code or state.sms_text):
        return None
    return f"{state.sms_status}:{state.sms_code}:{state.sms_text}"


def _deliver_late(client: AsyncPlatfone, state: Activation) -> None:
    """A code the holder never saw: a WARNING naming the number, and ``on_late_sms``."""
    billed = state.billing_status == BillingStatus.BILLED
    logger.warning(
        "a code arrived late for %s: %s (%s)",
        phone_of(state),
        state.sms_code or state.sms_text,
        "billed" if billed else f"billing {state.billing_status}",
    )
    callback = client._on_late_sms
    if callback is None:
        return
    try:
        callback(state)
    except Exception:  # the callback's failure must not stop the settling
        logger.exception("on_late_sms failed for %s", phone_of(state))


def _money_left(state: Activation) -> str:
    if state.billing_status == BillingStatus.BILLED:
        code = state.sms_code or state.sms_text
        return f"its SMS came and was billed (code {code})" if code else "its price was billed"
    return "its reserved price is released then"


def is_journaled(client: AsyncPlatfone) -> bool:
    """Whether the numbers ``client`` opens are journaled where a crash leaves them."""
    return client._http.limits.store.durable


def describe_left(
    state: Activation, attempted: SessionOutcome | None = None, journaled: bool = False
) -> str:
    """What leaving ``state`` as it is means, in the server's words; ``journaled``: it
    stays in a durable store's journal, and the words say how to pick it up."""
    phone = phone_of(state)
    if not state.is_active:
        return f"stopped settling {phone}: it is {state.activation_status}"
    expires = local_time(state.expire_at.timestamp())
    pick_up = (
        "; it stays journaled: recover() or `platfone recover` settles it once this"
        " process has ended"
        if journaled
        else ""
    )
    if state.billing_status == BillingStatus.BILLED:
        return f"left {phone} unfinalized until {expires}; {_money_left(state)}{pick_up}"
    during = " (a cancel was under way)" if attempted is SessionOutcome.CANCELED else ""
    return f"left {phone} to expire at {expires}{during}; {_money_left(state)}{pick_up}"


publish(SessionOutcome, Settled)  # loaded on first use: label them here
