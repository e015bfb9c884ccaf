"""The activation session: order a number, hold it for a block, settle it on the way out.

``AsyncPlatfone.activation()`` is :func:`open_session`. Whatever ends the block (a
return, an exception, cancellation, KeyboardInterrupt), the clean-up runs shielded from
cancellation and is ``_settle.settle``: an activation that got its SMS and was billed is
finalized, one still waiting for its first SMS is watched until ``cancelable_after``
allows its cancel (a late SMS is finalized and its code delivered), and any other is
left to expire. :class:`SessionOutcome` records which.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, TextIO

import anyio
import anyio.lowlevel
import attrs

from ._enums import ActivationStatus, BillingStatus
from ._errors import (
    ActivationEndedError,
    WaitTimeoutError,
)
from ._models import Activation, publish
from ._progress import phone_of
from ._settle import SessionOutcome, describe_left, outcome_of, settle
from ._shopping import Holdings, Shopper
from ._validate import Evidence
from ._watch import check_interval

if TYPE_CHECKING:
    from ._client import AsyncPlatfone
    from ._models._reports import ReportResult
    from ._validate import Prefer

__all__ = ["ActivationSession", "SessionOutcome", "open_session"]

logger = logging.getLogger("platfone_async")


class ActivationSession:
    """A number held by ``async with client.activation(...) as session:``.

    ``activation`` is the latest state the session knows; every method updates it.
    ``outcome`` is None while the block runs, then a :class:`SessionOutcome`.
    """

    __slots__ = (
        "_activation",
        "_attempted",
        "_client",
        "_holdings",
        "_interval",
        "_outcome",
        "wait_for_slot",
    )

    def __init__(
        self,
        client: AsyncPlatfone,
        activation: Activation,
        *,
        wait_for_slot: bool = True,
        holdings: Holdings | None = None,
    ) -> None:
        self._client = client
        self._holdings = holdings
        self._activation = activation
        self._outcome: SessionOutcome | None = None
        # What the session last tried to end the activation with, so that an activation
        # found finalized/cancelled (a lost answer, a retried PUT) is counted as ours.
        self._attempted: SessionOutcome | None = None
        # How often the holder polled: settling polls as often while it waits.
        self._interval = 10.0
        #: Whether the order waited for a free place under the 20-active limit.
        self.wait_for_slot = wait_for_slot

    def __repr__(self) -> str:
        a = self._activation
        outcome = "open" if self._outcome is None else f"outcome={self._outcome.value}"
        return (
            f"<ActivationSession {a.activation_id} {a.sms_status}/{a.activation_status} {outcome}>"
        )

    @property
    def activation(self) -> Activation:
        """The latest state the session knows."""
        return self._activation

    @property
    def outcome(self) -> SessionOutcome | None:
        """None while the block runs; then how it ended (see :class:`SessionOutcome`)."""
        return self._outcome

    @property
    def numbers(self) -> list[Activation]:
        """Every number the session held, oldest first: those :meth:`replace` gave up
        (as last seen: settled once the background is done with them), then the
        current one (:attr:`activation`)."""
        if self._holdings is None:
            return [self._activation]
        return [*self._holdings.states[:-1], self._activation]

    async def replace(self) -> Activation:
        """Give the current number up and hold the next-best offer's instead.

        The number is settled in the background as the block's end settles one -
        cancelled when ``cancelable_after`` allows, finalized if an SMS came meanwhile
        (its code in :attr:`numbers`, and said) - so the call is not held for it; the
        block's end waits for it. The next number is the best offer in a country this
        session has not tried yet (of the candidates it was opened with), else again
        the best of those tried; with one country, another number there.

        Returns:
            The new activation, also :attr:`activation` from now on.

        Raises:
            NoNumbersAvailableError: No offer had a number; the current one is kept.
            PlatfoneError: As ordering does (the current number is kept).
            RuntimeError: The block has ended (nothing is ordered).

        Examples:
            >>> try:
            ...     await session.wait_for_sms(timeout=120)
            ... except WaitTimeoutError:
            ...     await session.replace()  # the next-best offer
        """
        if self._holdings is None or self._outcome is not None:
            raise RuntimeError("replace() works inside the block of client.activation()")
        fresh = await self._holdings.replace(self._activation, self._settle_replaced)
        self._activation = fresh
        self._attempted = None
        return fresh

    async def _settle_replaced(
        self, state: Activation, on_state: Callable[[Activation], object]
    ) -> Activation:
        """Settle a number :meth:`replace` gave up, as the block's end settles one."""
        settled = await settle(self._client, state, interval=self._interval, on_state=on_state)
        return settled.activation

    async def refresh(self) -> Activation:
        """Fetch the activation's state now (``get_activation``) and return it.

        Returns:
            The current state, also kept as :attr:`activation`.

        Raises:
            PlatfoneError: As ``client.get_activation``.

        Examples:
            >>> state = await session.refresh()
        """
        self._activation = await self._client.get_activation(self._activation.activation_id)
        return self._activation

    async def wait_for_sms(
        self,
        *,
        timeout: float | None = None,
        interval: float = 10.0,
        progress: bool | TextIO | Callable[[Activation], object] = False,
    ) -> Activation:
        """Wait until an SMS arrives and return that state (as ``client.wait_for_sms``).

        After :meth:`retry`, it waits for the next SMS. ``progress=True`` shows the
        wait as text (the number, its status, a countdown to ``expire_at``, the code).
        Whatever it raises, the block's end still settles the number.

        Args:
            timeout: The longest wait in seconds (None: until the activation ends).
            interval: Seconds between polls (10, as the API asks).
            progress: Show the wait (True, a text stream) or report each state (a callable).

        Returns:
            The first state with an SMS (``sms_code``), also kept as :attr:`activation`.

        Raises:
            ActivationEndedError: The activation ended (or ``expire_at`` passed) first.
            WaitTimeoutError: ``timeout`` seconds passed first.
            PlatfoneError: As ``client.wait_for_sms``.

        Examples:
            >>> activation = await session.wait_for_sms(timeout=300, progress=True)
            >>> activation.sms_code
        """
        self._interval = check_interval(interval)
        try:
            state = await self._client.wait_for_sms(
                self._activation, timeout=timeout, interval=interval, progress=progress
            )
        except (ActivationEndedError, WaitTimeoutError) as error:
            if error.activation is not None:
                self._activation = error.activation
            raise
        self._activation = state
        return state

    async def watch(self, *, interval: float = 10.0) -> AsyncGenerator[Activation, None]:
        """Yield the state now, then each change, until settled (as ``watch_activation``).

        Yields:
            Each state, also kept as :attr:`activation`.

        Raises:
            PlatfoneError: As ``client.watch_activation``.

        Examples:
            >>> async for state in session.watch():
            ...     print(state.sms_status)
        """
        # watch_activation returns an async generator: close it with this one.
        self._interval = check_interval(interval)
        states = self._client.watch_activation(self._activation, interval=interval)
        async with contextlib.aclosing(states):
            async for state in states:
                self._activation = state
                yield state

    async def retry(self) -> Activation:
        """Ask for another SMS (``retry_activation``), then return the refreshed state.

        Passing the activation (not just its id) lets a retry whose answer was lost be
        recognised by its effect. After such an unsure failure, :class:`PlatfoneError`
        is raised if the activation's state cannot tell whether the retry took effect.

        Returns:
            The state after the retry (``sms_status`` ``retryRequested``).

        Raises:
            ConflictError: The activation cannot be retried now (not ``is_retriable``).
            PlatfoneError: As ``client.retry_activation``.

        Examples:
            >>> await session.retry()
            >>> second = await session.wait_for_sms(timeout=300)
        """
        await self._client.retry_activation(self._activation)
        return await self.refresh()

    async def finalize(self) -> Activation:
        """Finalize the activation (``finalize_activation``): it got what it needed.

        ``activation`` then shows it ``finalized`` (without another request), and the
        block's end has nothing left to do.

        Returns:
            The finalized state.

        Raises:
            ConflictError: No SMS was billed yet, or it is no longer ``active``.
            PlatfoneError: As ``client.finalize_activation``.

        Examples:
            >>> code = (await session.wait_for_sms()).sms_code
            >>> await session.finalize()  # at once, not on leaving the block
        """
        self._attempted = SessionOutcome.FINALIZED
        await self._client.finalize_activation(self._activation.activation_id)
        self._activation = attrs.evolve(
            self._activation, activation_status=ActivationStatus.FINALIZED
        )
        return self._activation

    async def cancel(self) -> Activation:
        """Cancel the activation (``cancel_activation``); needs ``cancelable_after`` passed.

        ``activation`` then shows it ``canceled`` and the price ``released`` (without
        another request). Leaving the block cancels by itself, waiting for
        ``cancelable_after`` when it must.

        Returns:
            The cancelled state.

        Raises:
            ConflictError: An SMS arrived, ``cancelable_after`` has not passed (or is
                ``None``), or it is no longer ``active``.
            PlatfoneError: As ``client.cancel_activation``.

        Examples:
            >>> await session.cancel()
        """
        self._attempted = SessionOutcome.CANCELED
        await self._client.cancel_activation(self._activation.activation_id)
        self._activation = attrs.evolve(
            self._activation,
            activation_status=ActivationStatus.CANCELED,
            billing_status=BillingStatus.RELEASED,
        )
        return self._activation

    async def report(
        self, reason_id: int, *, message: str | None = None, evidence: Evidence | None = None
    ) -> ReportResult:
        """Report a problem with the activation (``create_report``).

        Returns:
            The :class:`ReportResult`.

        Raises:
            InvalidParameterError: A bad reason, message or evidence file (nothing sent).
            ReportDeadlinePassedError: It is too late to report this activation.
            PlatfoneError: As ``client.create_report``.

        Examples:
            >>> [reason, *_] = await client.get_report_reasons(session.activation)
            >>> await session.report(reason.reason_id, message="the code never came")
        """
        return await self._client.create_report(
            self._activation.activation_id, reason_id, message=message, evidence=evidence
        )

    # -- leaving the block --------------------------------------------------------------

    def _learn(self, state: Activation) -> None:
        self._activation = state

    async def _close(self, error: BaseException | None) -> None:
        """Settle the activation, shielded; never hide ``error`` (what ended the block).

        An interruption (Ctrl-C, a cancellation) is never silent: what the session does
        about it is logged as a warning (shown on stderr when logging is not set up),
        and a second one - which reaches through the shield only as KeyboardInterrupt
        on trio, or as a cancellation of the task itself on asyncio (``asyncio.run``'s
        second Ctrl-C, the sync client's) - cuts the clean-up short, saying what it left.
        """
        interrupted = error is not None and not isinstance(error, Exception)
        with anyio.CancelScope(shield=True):
            try:
                settled = await settle(
                    self._client,
                    self._activation,
                    # (the words say "Ctrl-C again" only after a first one)
                    interrupted=interrupted and not isinstance(error, SystemExit),
                    attempted=self._attempted,
                    interval=self._interval,
                    on_state=self._learn,
                )
            except Exception as cleanup_error:
                self._outcome = SessionOutcome.LEFT_TO_EXPIRE
                if error is None:
                    raise
                logger.warning(
                    "activation %s: could not settle it after %s (left to expire): %s: %s",
                    self._activation.activation_id,
                    type(error).__name__,
                    type(cleanup_error).__name__,
                    cleanup_error,
                )
            except BaseException:  # a second interruption cut the clean-up short
                # (settle has said what it left)
                self._outcome = outcome_of(self._activation, self._attempted)
                raise
            else:
                self._activation = settled.activation
                self._outcome = settled.outcome
        if interrupted:
            logger.warning("%s", self._describe_outcome())
        else:
            logger.debug("activation %s: %s", self._activation.activation_id, self._outcome)

    def _describe_outcome(self) -> str:
        a = self._activation
        phone = phone_of(a)
        if self._outcome is SessionOutcome.FINALIZED:
            return f"finalized {phone} (it got its SMS: {a.sms_code or a.sms_text})"
        if self._outcome is SessionOutcome.CANCELED:
            return f"cancelled {phone}; its reserved price is released"
        if self._outcome is SessionOutcome.LEFT_TO_EXPIRE:
            return describe_left(a)
        return f"{phone} had already ended ({a.activation_status})"


@contextlib.asynccontextmanager
async def open_session(
    client: AsyncPlatfone,
    service_id: str,
    country_id: str | Sequence[str] | None,
    *,
    prefer: Prefer,
    max_price: int | None,
    price_ceiling: int | None,
    quality_factor: float | None,
    wait_for_slot: bool,
) -> AsyncIterator[ActivationSession]:
    """Order a number, yield its :class:`ActivationSession`, settle it on leaving.

    One ``country_id``: ordered there. None or several: the best offer by ``prefer``,
    the next when a country has no number or wants more than the ceiling
    (``_shopping.Shopper``). ``max_price`` caps the first order; ``price_ceiling``
    (1-10000, at least ``max_price``) caps every order, and is the first order's cap
    when ``max_price`` is None. A :class:`MaxPriceExceededError` whose
    ``suggested_price`` is within the ceiling is answered by ordering again at that
    price with its ``order_id`` (at most ``MAX_REORDERS`` times); above it, or with no
    ceiling, it is raised (or the next offer tried) and nothing more is ordered there.
    When that order's ``order_id`` has gone stale (404 "Order not found"), it is ordered
    afresh once at the same price, without the token. ``wait_for_slot`` says whether to
    wait for a free place under the 20-active limit rather than fail with
    :class:`ActiveActivationsLimitError`.
    """
    shopper = Shopper(
        client,
        service_id,
        country_id,
        prefer=prefer,
        max_price=max_price,
        price_ceiling=price_ceiling,
        quality_factor=quality_factor,
        wait_for_slot=wait_for_slot,
    )
    activation = await shopper.order()
    holdings = Holdings(shopper, activation)
    session = ActivationSession(client, activation, wait_for_slot=wait_for_slot, holdings=holdings)
    # Numbers replace() gave up are settled in this group; what ends the block is caught
    # inside it and raised after, as it was (a task group would wrap it in a group).
    ended: BaseException | None = None
    async with anyio.create_task_group() as holdings.background:
        try:
            await anyio.lowlevel.checkpoint()  # a cancellation during the order lands here
            yield session
        except BaseException as error:
            ended = error
        try:
            await session._close(ended)
        except Exception as error:
            ended = error
        except BaseException as error:  # a second interruption: let go of every number
            holdings.abandon()
            ended = error
    if ended is not None:
        raise ended


publish(ActivationSession)  # loaded on first use: label it here
