"""The order flow behind ``create_activation``, and the writes judged by their effect.

An order takes a slot of the 20-active limit (waiting for one, FIFO), is entered in the
key's order book, and is sent once. What a failure means depends on whether the request
may have reached the server:

- surely not (never sent, or refused with a 4xx/429): the slot comes back, nothing else;
- maybe: the order is **reconciled** through the activation history, not resent (what
  the user is promised: docs/guides/reliability.md, "Reconciliation"; how the history
  is searched: ``_reconcile``). A resend after a complete 500/502/503 keeps the same
  slot; an unknown outcome keeps it for as long as such a number could live.

Retry, cancel and finalize are writes too. Cancel and finalize are the same twice, so
they are retried like reads and a 409 after a retried attempt is judged by the
activation's state; a retry is not (a late duplicate wipes the next SMS), so a retry that
may have reached the server is judged by the activation before it is ever sent again.

:class:`Orders` holds no client: the reads it needs (``get_activation`` and
``get_activation_history``, through the client's own limits) come in as a
:class:`Reader`, so the arrows point one way (``_client`` -> ``_orders`` -> ``_http``).
"""

from __future__ import annotations

import copy as _copy
import datetime as dt
import enum
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import httpx

from ._enums import ActivationStatus, BillingStatus, SmsStatus
from ._errors import (
    ActiveActivationsLimitError,
    APIError,
    ConflictError,
    InvalidParameterError,
    OrderOutcomeUnknownError,
    PlatfoneError,
    ResponseDecodeError,
    ServerError,
    SuccessRateGuardError,
)
from ._http import HTTPPipeline
from ._models import Activation, Page
from ._ratelimit import Slot, SuccessRateCheck
from ._retry import SendTrace
from ._spend import SpendLimit, refusal

if TYPE_CHECKING:
    from ._models._catalog import PriceInfo
    from ._reconcile import OrderBook, PendingOrder, Verdict


class Reader(Protocol):
    """The reads the order flow needs: the client's own, through its limits."""

    async def get_activation(self, activation_id: str | Activation) -> Activation: ...

    async def get_activation_history(
        self, *, page: int = 1, limit: int = 10
    ) -> Page[Activation]: ...

    async def get_price(self, service_id: str, country_id: str) -> PriceInfo: ...


__all__ = ["Orders", "SuccessRateGuard"]

logger = logging.getLogger("platfone_async")

SuccessRateGuard = Literal["warn", "raise", "off"]

#: How long a slot stays taken after an order whose outcome is unknown (it may have
#: opened a number): the longest an activation lives, plus a margin.
_UNKNOWN_ORDER_HOLD = 30 * 60.0

#: Statuses by which a proxy says the server may still be working on the request.
_UPSTREAM_TIMEOUT = frozenset({504, 524})

_NO_SMS_YET = frozenset({SmsStatus.SMS_REQUESTED})
#: How many numbers' last observed states are remembered (then forgotten at once).
_OBSERVED_MEMORY = 10_000
_PAID = frozenset({BillingStatus.BILLED, BillingStatus.REFUNDED})
_GIVEN_BACK = frozenset({BillingStatus.RELEASED, BillingStatus.REFUNDED})


class _Money:
    """What an order's spend entry comes to: ``entry`` (None without a spend limit), and
    whether the order surely placed nothing (its money is then released)."""

    __slots__ = ("entry", "nothing_placed")

    def __init__(self, entry: str | None) -> None:
        self.entry = entry
        self.nothing_placed = True


class Orders:
    """One client's order flow: slots, the key's order book, send, reconcile, resend once."""

    def __init__(
        self,
        http: HTTPPipeline,
        *,
        slots_on: bool,
        slot_timeout: float | None,
        success_rate_guard: SuccessRateGuard,
        success_rate_floor: float,
        spend_limit: SpendLimit | None = None,
    ) -> None:
        self._http = http
        self.spend_limit = spend_limit
        if spend_limit is not None:
            http.limits.count_spending()
        self._slots_on = slots_on
        self._slot_timeout = slot_timeout
        self._success_rate_guard: SuccessRateGuard = success_rate_guard
        self._success_rate_floor = success_rate_floor
        self._book: OrderBook | None = None
        # The state of each number the store last learnt from this client (shared with
        # the with_options copies): a watch's polls that show nothing new cost it nothing.
        self._observed: dict[str, Activation] = {}

    @property
    def book(self) -> OrderBook:
        """The key's order book, made (and ``_reconcile`` loaded) on the first order: a
        client that only reads never imports the reconciliation machinery."""
        if self._book is None:
            from ._reconcile import book_for

            self._book = book_for(self._http.limits)
        return self._book

    def with_pipeline(self, http: HTTPPipeline) -> Orders:
        """The same order flow (and the key's order book) through another pipeline."""
        copy = _copy.copy(self)
        copy._http = http
        return copy

    async def observe(self, activation: Activation) -> Activation:
        """Learn from any activation state seen: free its slot if it ended, count its SMS,
        and keep the journal true (a new state written, an ended number out). A state
        this client has already told the store about costs a comparison (a watch's polls
        mostly show nothing new)."""
        if self._observed.get(activation.activation_id) != activation:
            await self._observe_states((activation,))
        return activation

    async def observe_all(self, activations: Sequence[Activation]) -> None:
        """:meth:`observe` for a page of states (one journal write for all)."""
        observed = self._observed
        new = [state for state in activations if observed.get(state.activation_id) != state]
        if new:
            await self._observe_states(new)

    async def _observe_states(
        self, states: Sequence[Activation], *, journaled: bool = False
    ) -> None:
        """Tell the store what ``states`` show (``journaled``: their records are written
        already), and remember them once it has it all: a write the store missed is
        made again at the next sight of the same state."""
        limits = self._http.limits
        stored = True
        records: dict[str, tuple[str, float]] = {}
        ended: list[str] = []
        for state in states:
            stored &= await limits.observe(
                state.activation_id,
                ended=not state.is_active,
                expire_at=state.expire_at,
                sms=state.sms_status not in _NO_SMS_YET or state.billing_status in _PAID,
                released=state.billing_status in _GIVEN_BACK,
            )
            if not journaled:
                if state.is_active:
                    records[state.activation_id] = (state.to_json(), state.expire_at.timestamp())
                else:
                    ended.append(state.activation_id)
        if records or ended:
            stored &= await limits.journal_seen(records, ended)
        if stored:
            observed = self._observed
            if len(observed) + len(states) > _OBSERVED_MEMORY:
                observed.clear()
            for state in states:
                observed[state.activation_id] = state

    # -- ordering ---------------------------------------------------------------------------

    async def place(
        self,
        body: Mapping[str, Any],
        *,
        max_price: int | None,
        wait_for_slot: bool,
        reader: Reader,
    ) -> Activation:
        """Send the order ``body`` (validated) once; see the module for what failures do.

        With a spend limit, its money is entered first (refused: :class:`SpendLimitError`),
        released when the order surely placed nothing, kept while its outcome is unknown,
        and counted at the actual price once it lands."""
        await self._guard_success_rate()
        money = _Money(await self._take_money(body, max_price, reader))
        if money.entry is None:
            return await self._place(body, max_price, wait_for_slot, reader, money)
        limits = self._http.limits
        try:
            activation = await self._place(body, max_price, wait_for_slot, reader, money)
        except BaseException:
            if money.nothing_placed:
                await _shielded(limits.spend_release(money.entry))
            raise
        await _shielded(limits.spend_bind(money.entry, activation.activation_id, activation.price))
        return activation

    async def _take_money(
        self, body: Mapping[str, Any], max_price: int | None, reader: Reader
    ) -> str | None:
        """The order's spend entry (None without a spend limit), at its ``max_price``,
        else at the top of the price list's range: what such an order may cost."""
        spend = self.spend_limit
        if spend is None:
            return None
        price = max_price
        if price is None:
            info = await reader.get_price(str(body["service_id"]), str(body["country_id"]))
            price = max(info.price.max, info.price.suggested)
        taken = await self._http.limits.spend_take(spend.cents, spend.period, price)
        if taken.entry is None:
            room_at = None if taken.room_in is None else self._http.clock.time() + taken.room_in
            raise refusal(spend, price=price, counted=taken.counted, room_at=room_at)
        return taken.entry

    async def _place(
        self,
        body: Mapping[str, Any],
        max_price: int | None,
        wait_for_slot: bool,
        reader: Reader,
        money: _Money,
    ) -> Activation:
        sid, cid = str(body["service_id"]), str(body["country_id"])
        limits = self._http.limits
        if not self._slots_on:
            await limits.check_account()  # with slots, taking one checks it
        resent = False
        slot: Slot | None = None
        while True:
            if slot is None:
                slot = await self._take_slot(wait_for_slot)
            order = self.book.open(sid, cid, max_price, SendTrace())
            flight: str | None = None
            try:
                # The fleet sees the order in flight until it lands (see ``_reconcile``).
                flight = await limits.flight_start(sid, cid, max_price, slot)
                activation = await self._send(body, order.trace)
            except ActiveActivationsLimitError:
                await _shielded(limits.flight_end(flight))
                # Activations opened elsewhere fill the account: learn it, and queue again.
                self.book.close(order)
                if slot is None:
                    raise
                await _shielded(limits.server_full(slot))
                slot = None
                if not wait_for_slot:
                    raise
                continue
            except BaseException as exc:
                await _shielded(limits.flight_end(flight))
                money.nothing_placed = False
                outcome = await self._after_failure(order, exc, slot, reader)
                if isinstance(outcome, Activation):  # claimed for the fleet when found
                    return await self._opened(outcome, slot)
                money.nothing_placed = outcome is not _Failure.HELD
                if outcome is _Failure.NOT_PLACED:
                    if not resent and self._may_resend(exc):
                        resent = True
                        logger.info(
                            "order for %s/%s: the history shows it was not placed; "
                            "sending it once more",
                            sid,
                            cid,
                        )
                        continue  # with the same slot
                    if slot is not None:
                        await _shielded(limits.release_slot(slot))
                raise
            self.book.handed_out(order, activation, self._http.clock.time())
            try:
                # Claims it for the fleet, and ends its flight.
                return await self._opened(activation, slot, flight)
            except BaseException:
                await _shielded(limits.flight_end(flight))
                raise

    async def _send(self, body: Mapping[str, Any], trace: SendTrace) -> Activation:
        reply = await self._http.fetch(
            "create_activation",
            "POST",
            "/activation",
            json_body=body,
            idempotent=False,
            shield=True,
            trace=trace,
        )
        return self._http.decode_reply(reply, Activation)

    async def _opened(
        self, activation: Activation, slot: Slot | None, flight: str | None = None
    ) -> Activation:
        """Account for an open number in one store step (slot bound, claimed, journaled,
        counted, ``flight`` ended). Without a ``flight`` the number was found by
        reconciliation, which claimed it already."""
        limits = self._http.limits
        aid = activation.activation_id
        with anyio.CancelScope(shield=True):  # the number is open: account for it
            claimed = await limits.order_landed(
                slot, flight, aid, activation.to_json(), activation.expire_at.timestamp()
            )
            if flight is not None and not claimed:
                # The server answered this order with it, so it is this caller's; another
                # process reconciled an order of its own into it - only when its wait
                # for this order's answer ran out (or Redis lost this order's flight).
                logger.error(
                    "activation %s: the server answered this order with it, but another "
                    "process on this key had already handed it out by reconciliation",
                    aid,
                )
            await self._observe_states((activation,), journaled=True)
        return activation

    async def _after_failure(
        self, order: PendingOrder, exc: BaseException, slot: Slot | None, reader: Reader
    ) -> Activation | _Failure:
        """What a failed order comes to, the slot and the order book settled accordingly.

        The activation reconciliation found; ``NOT_PLACED`` when the history shows a
        completely answered order was not placed (the caller may send it once more);
        ``SETTLED`` when it surely placed nothing (never sent, or refused: the slot is
        back); ``HELD`` when the caller is being interrupted after it left, or nobody
        looks (the slot stays taken). Raises :class:`OrderOutcomeUnknownError` when it
        cannot tell.
        """
        if not order.trace.reached or _refused(exc):
            self.book.close(order)
            if slot is not None:
                await _shielded(self._http.limits.release_slot(slot))
            return _Failure.SETTLED
        if not isinstance(exc, PlatfoneError) or not self._http.retry.reconcile_orders:
            # Interrupted (KeyboardInterrupt, a cancellation) or a bug after the request
            # left, or reconciliation is off: the order may exist, and nobody looks now.
            await self._hold_unknown(order, slot)
            return _Failure.HELD
        from ._reconcile import Verdict, VerdictKind, reconcile  # (loaded by self.book)

        sid, cid = order.service_id, order.country_id
        logger.warning(
            "order for %s/%s: %s: %s - it may have been placed; looking for it in the "
            "activation history",
            sid,
            cid,
            type(exc).__name__,
            exc,
        )
        try:
            verdict = await reconcile(
                self.book,
                order,
                self._http.retry,
                fetch_page=reader.get_activation_history,
                fetch_one=reader.get_activation,
                activation_id=exc.activation_id if isinstance(exc, ResponseDecodeError) else None,
                known_elsewhere=self._http.limits.known_elsewhere,
                flights_elsewhere=self._http.limits.flights_elsewhere,
                flights_orphaned=self._http.limits.flights_orphaned,
            )
        except BaseException:
            await self._hold_unknown(order, slot)
            raise
        if (
            verdict.kind is VerdictKind.FOUND
            and verdict.activation is not None
            and not await self._http.limits.claim(verdict.activation.activation_id)
        ):
            # Another process of the fleet handed it out first: not this order's.
            verdict = Verdict(
                VerdictKind.UNDECIDED,
                verdict.window,
                reason="the activation found was claimed by another process on this key",
                candidates=(verdict.activation,),
            )
        if verdict.kind is VerdictKind.FOUND and verdict.activation is not None:
            self.book.close(order)
            logger.info(
                "order for %s/%s: found activation %s in the history",
                sid,
                cid,
                verdict.activation.activation_id,
            )
            return verdict.activation
        if verdict.kind is VerdictKind.ABSENT and _answered(exc):
            self.book.close(order)
            return _Failure.NOT_PLACED
        await self._hold_unknown(order, slot)
        raise _unknown_outcome(order, verdict, exc) from exc

    def _may_resend(self, exc: BaseException) -> bool:
        policy = self._http.retry
        return (
            policy.max_retries > 0
            and isinstance(exc, ServerError)
            and exc.status_code in policy.retry_statuses
        )

    async def _guard_success_rate(self) -> None:
        def refuse(result: SuccessRateCheck) -> SuccessRateGuardError:
            return SuccessRateGuardError(
                result.message(),
                rate=result.projected_rate,
                orders=result.orders,
                floor=result.floor,
            )

        await self._http.limits.guard_success_rate(
            self._success_rate_guard, floor=self._success_rate_floor, error=refuse
        )

    async def _take_slot(self, wait: bool) -> Slot | None:
        if not self._slots_on:
            return None
        timeout = self._slot_timeout if wait else 0.0
        try:
            return await self._http.limits.acquire_slot(timeout)
        except TimeoutError:
            capacity = self._http.limits.slot_capacity
            raise ActiveActivationsLimitError(
                f"all {capacity} activation slots of this key are in use "
                "(client-side; no order was sent)",
                status_code=429,
            ) from None

    async def _hold_unknown(self, order: PendingOrder, slot: Slot | None) -> None:
        """An order that may have opened a number we never heard of: keep its slot taken
        for as long as such a number could live, and its window in the order book."""
        self.book.keep_undecided(order, self._http.retry.clock_skew)
        if slot is not None and not slot.released:
            clock = self._http.clock
            hold = clock.time() + _UNKNOWN_ORDER_HOLD
            await _shielded(
                self._http.limits.bind_slot(slot, f"unknown-order@{clock.time():.3f}", hold)
            )

    # -- writes judged by their effect ----------------------------------------------------------

    async def retry(self, activation_id: str, before: Activation | None, reader: Reader) -> None:
        """``PUT .../retry``, never resent blindly (see ``AsyncPlatfone.retry_activation``)."""
        aid = activation_id
        for resent in (False, True):
            trace = SendTrace()
            try:
                response = await self._http.send(
                    "retry_activation",
                    "PUT",
                    f"/activation/{aid}/retry",
                    idempotent=False,
                    trace=trace,
                )
            except PlatfoneError as exc:
                if not trace.reached or _refused(exc):
                    raise
                if await _retry_took_effect(reader, aid, before):
                    return
                if resent or not _answered(exc) or not self._may_resend(exc):
                    raise
                logger.info("retry of %s: not applied (the activation says so); again", aid)
                continue
            self._check_action_body("retry_activation", aid, response)
            return

    async def settle(
        self,
        endpoint: str,
        activation_id: str,
        action: Literal["cancel", "finalize"],
        reader: Reader,
    ) -> None:
        """Cancel or finalize: retried like a GET, since twice is the same as once."""
        aid = activation_id
        trace = SendTrace()
        try:
            response = await self._http.send(
                endpoint, "PUT", f"/activation/{aid}/{action}", idempotent=True, trace=trace
            )
        except ConflictError:
            # A retry whose first attempt went through meets the state that attempt made.
            if trace.attempts < 2 or not await _already_done(reader, aid, action):
                raise
        else:
            self._check_action_body(endpoint, aid, response)
        self._observed.pop(aid, None)  # its next state is news, whatever it shows
        await self._http.limits.observe(aid, ended=True, released=action == "cancel")
        await self._http.limits.journal_seen({}, [aid])

    def _check_action_body(self, endpoint: str, aid: str, response: httpx.Response) -> None:
        if response.content.strip():
            try:
                self._http.json(response)  # raises on an error object in a 2xx body
            except ResponseDecodeError as exc:
                # The 2xx says it was done; an unreadable body changes nothing.
                logger.debug("%s %s: done; its body was not JSON (%s)", endpoint, aid, exc)


async def _retry_took_effect(reader: Reader, activation_id: str, before: Activation | None) -> bool:
    try:
        state = await reader.get_activation(activation_id)
    except PlatfoneError:
        return False
    if state.sms_status == SmsStatus.RETRY_REQUESTED:
        return True
    return (
        before is not None
        and before.sms_code is not None
        and state.sms_received
        and state.sms_code != before.sms_code
    )


async def _already_done(reader: Reader, activation_id: str, action: str) -> bool:
    """Whether the activation shows ``action`` done (after a PUT answered 409)."""
    try:
        state = await reader.get_activation(activation_id)
    except PlatfoneError:
        return False
    if action == "cancel":
        return state.activation_status == ActivationStatus.CANCELED
    return state.activation_status == ActivationStatus.FINALIZED


async def _shielded(operation: Awaitable[object]) -> None:
    """Settle a slot even while the caller is being cancelled."""
    with anyio.CancelScope(shield=True):
        await operation


class _Failure(enum.Enum):
    """What a failed order came to when it opened nothing known (``HELD``: it may exist)."""

    SETTLED = "settled"
    NOT_PLACED = "not placed"
    HELD = "held"


def _refused(exc: BaseException) -> bool:
    """Whether the server (or the client, before sending) surely refused the order."""
    return isinstance(exc, (APIError, InvalidParameterError)) and not isinstance(exc, ServerError)


def _answered(exc: BaseException) -> bool:
    """Whether the failure was a complete answer: the server is done with the request."""
    return isinstance(exc, ServerError) and exc.status_code not in _UPSTREAM_TIMEOUT


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def _unknown_outcome(
    order: PendingOrder, verdict: Verdict, exc: BaseException
) -> OrderOutcomeUnknownError:
    start, end = _utc(verdict.window[0]), _utc(verdict.window[1])
    reason = verdict.reason or (
        "the activation history shows no such order, but the server may still be placing it"
    )
    return OrderOutcomeUnknownError(
        f"order for {order.service_id}/{order.country_id} may or may not have been placed: "
        f"{reason} (after {type(exc).__name__}: {exc}); look for an activation created "
        f"between {start.isoformat()} and {end.isoformat()} before ordering again",
        service_id=order.service_id,
        country_id=order.country_id,
        window_start=start,
        window_end=end,
        last_error=exc,
        candidates=verdict.candidates,
    )
