"""The journal of open numbers, read (``open_activations()``) and recovered (``recover()``).

Every number an order of the SDK opens is journaled in the key's store with its owner
(one per process and key, alive while its lease is renewed), rewritten from each state
a client reads about it, and taken out when a client sees it end (``_orders`` keeps it
true). With a durable store (SQLite, Redis) the journal outlives the process: a number
whose owner's lease lapsed was left by a process that died, and is there to be taken
over and settled.

An order whose answer never arrived (its process died while it was in the air) left no
journal entry, but its flight stays in the store (``KeyStore.flights_list``: the offer,
when it left) until a recovery deals with it. :func:`look_at_flights` judges such
flights against the activation history: a number of the offer created in the flight's
window (``FLIGHT_REACH`` after it left, clock skew on both sides) that no live process
holds (journaled, claimed as handed out, or an order of a live process in flight could
own) is the flight's; when the flights cannot explain every such number, one is
someone else's and which is not known: a WARNING names them and none is taken. A
flight whose window the history covers with nothing of its own placed nothing.

:func:`recover` takes such numbers over (a claim in the store: two survivors never take
the same one) and settles each as a session would (``_settle``): finalized when its SMS
came and was billed, cancelled once ``cancelable_after`` allows, otherwise left to
expire - watching while it waits, so a code that comes meanwhile is finalized and
delivered (the state returned, a WARNING, ``on_late_sms``). It never orders.
:class:`OrphanWatcher` does it in the background as leases lapse (``recover_orphans``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Container, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import attrs

from ._convert import decode
from ._errors import NotFoundError, PlatfoneError, ResponseDecodeError
from ._models import Activation, publish
from ._progress import local_time, phone_of
from ._ratelimit import Flight, JournalEntry, offer_of
from ._reconcile import PendingOrder, book_for, matching, read_back
from ._retry import SendTrace
from ._settle import SessionOutcome, Settled, settle

if TYPE_CHECKING:
    from ._client import AsyncPlatfone

__all__ = [
    "FLIGHT_REACH",
    "FlightLook",
    "OpenActivation",
    "OrphanWatcher",
    "look_at_flights",
    "open_activations",
    "recover",
]

logger = logging.getLogger("platfone_async")

#: The longest after its request left that an order's number can be created (a
#: request's time at the server): a flight's window ends this long after it left.
FLIGHT_REACH = 60.0
#: How often a recovery looks again while a live order in flight may own a candidate,
#: and for how long at most (it then leaves the flights for a later recovery).
_POLL = 0.25
_IN_FLIGHT_WAIT = 120.0
#: ``recover_orphans`` looks at lapsed owners' flights at most this often (each look
#: reads the activation history: 6 calls a minute).
_FLIGHTS_EVERY = 30.0


@attrs.frozen
class OpenActivation:
    """A number in the journal: opened through the SDK on this key and not settled yet.

    ``activation`` is its latest state a client read; ``owner`` names the process (and
    key) holding it; ``alive`` says whether that owner's lease still runs. A lapsed one
    (``alive`` False) was left by a process that died: ``recover()`` takes it over.
    ``mine``: held by this process.
    """

    activation: Activation
    owner: str
    alive: bool
    mine: bool

    @property
    def lapsed(self) -> bool:
        """Whether its owner's lease lapsed (the process holding it is gone)."""
        return not self.alive


def _activation(record: str) -> Activation:
    data = json.loads(record)
    return decode(data, Activation, status_code=200, text=record)


def _readable(entry: JournalEntry) -> Activation | None:
    try:
        return _activation(entry.record)
    except (ValueError, ResponseDecodeError) as exc:
        logger.warning(
            "journaled activation %s: its record cannot be read (%s); left in the journal",
            entry.activation_id,
            exc,
        )
        return None


async def open_activations(client: AsyncPlatfone) -> list[OpenActivation]:
    """The journal of ``client``'s key, soonest expiry first (see
    ``AsyncPlatfone.open_activations``)."""
    limits = client._http.limits
    me = limits.store.owner
    found = []
    for entry in await limits.journal():
        activation = _readable(entry)
        if activation is not None:
            found.append(OpenActivation(activation, entry.owner, entry.alive, entry.owner == me))
    try:
        look = await _look(client, wait=False)
    except PlatfoneError as exc:
        logger.warning(
            "orders of a process that died in flight: %s: %s; the numbers they may have "
            "opened are not listed",
            type(exc).__name__,
            exc,
        )
        return found
    found += [OpenActivation(a, f.owner, False, False) for f, a in look.taken if a.is_active]
    return sorted(found, key=lambda o: o.activation.expire_at)


async def _take_lapsed(client: AsyncPlatfone) -> list[Activation]:
    """Claim every journaled number whose owner's lease lapsed: their last states."""
    limits = client._http.limits
    lapsed = [e for e in await limits.journal() if not e.alive]
    if not lapsed:
        return []
    taken = await limits.journal_take([e.activation_id for e in lapsed])
    states = [_readable(e) for e, mine in zip(lapsed, taken, strict=True) if mine]
    return [state for state in states if state is not None]


@attrs.frozen
class FlightLook:
    """What one look at the lapsed owners' flights found.

    ``taken``: each number matched to the flight that placed it; ``ambiguous``: flights
    of one service and country with the numbers they cannot all explain (one is someone
    else's, and which is not known); ``waiting``: an order of a live process in flight may
    own a candidate (nothing is judged until it lands); ``placed_nothing``: flights whose
    window the history covers without a number of their own.
    """

    taken: tuple[tuple[Flight, Activation], ...] = ()
    ambiguous: tuple[tuple[tuple[Flight, ...], tuple[Activation, ...]], ...] = ()
    waiting: bool = False
    placed_nothing: tuple[Flight, ...] = ()


def _same_offer(flight: Flight, activation: Activation) -> bool:
    service_id, country_id, max_price = offer_of(flight.offer)
    return (
        activation.service_id == service_id
        and activation.country_id == country_id
        and (max_price is None or activation.price <= max_price)
    )


def look_at_flights(
    flights: Sequence[Flight],
    history: Sequence[Activation],
    held: Container[str],
    *,
    skew: float,
    read_at: float,
    reaches: float = -math.inf,
) -> FlightLook:
    """Judge the lapsed owners' ``flights`` against ``history`` (a read that began at
    ``read_at`` and covers windows starting after ``reaches``). ``held``: the ids a live
    process holds (journaled, or claimed as handed out), never candidates; a candidate an
    order of a live process in flight could own (created after it left) is not judged."""
    orders: dict[PendingOrder, Flight] = {}
    for flight in flights:
        if not flight.alive:
            service_id, country_id, max_price = offer_of(flight.offer)
            window = (flight.left - skew, flight.left + FLIGHT_REACH + skew)
            order = PendingOrder(service_id, country_id, max_price, SendTrace(), window=window)
            orders[order] = flight
    candidates: dict[str, Activation] = {}
    for activation in history:
        aid = activation.activation_id
        if aid not in held and any(o.could_own(activation, 0.0) for o in orders):
            candidates.setdefault(aid, activation)
    live = [f for f in flights if f.alive]
    if any(
        _same_offer(f, a) and a.created_at.timestamp() >= f.left - skew
        for f in live
        for a in candidates.values()
    ):
        return FlightLook(waiting=True)
    groups: dict[tuple[str, str], list[PendingOrder]] = {}
    for order in orders:
        groups.setdefault((order.service_id, order.country_id), []).append(order)
    taken: list[tuple[Flight, Activation]] = []
    ambiguous = []
    nothing = []
    for (service_id, country_id), members in groups.items():
        if any(o.window is None or o.window[0] <= reaches for o in members):
            continue  # the history read did not reach back that far: for a later look
        theirs = [
            a
            for a in candidates.values()
            if a.service_id == service_id and a.country_id == country_id
        ]
        matched = matching(theirs, members)
        if matched is None:
            ambiguous.append((tuple(orders[o] for o in members), tuple(theirs)))
            continue
        taken += [(orders[matched[a.activation_id]], a) for a in theirs]
        placed = set(matched.values())
        nothing += [
            orders[o]
            for o in members
            if o not in placed and o.window is not None and o.window[1] <= read_at
        ]
    return FlightLook(tuple(taken), tuple(ambiguous), False, tuple(nothing))


async def _look(client: AsyncPlatfone, *, wait: bool) -> FlightLook:
    """One look at the lapsed owners' flights (none: nothing read). ``wait``: while an
    order of a live process in flight may own a candidate, look again (for at most
    ``_IN_FLIGHT_WAIT``)."""
    limits = client._http.limits
    flights = await limits.flights()
    lapsed = [f.left for f in flights if not f.alive]
    if not lapsed:
        return FlightLook()
    clock = client.clock
    skew = book_for(limits).skew(client._http.retry.clock_skew)
    history = await read_back(client.get_activation_history, min(lapsed) - skew, 0, clock.time())
    give_up = clock.time() + _IN_FLIGHT_WAIT
    while True:
        # Read after the history: an order that lands claims its number before its
        # flight ends, and one that leaves later cannot have a number in the history.
        flights = await limits.flights()
        held = {e.activation_id for e in await limits.journal()}
        held |= await limits.known_elsewhere(
            a.activation_id for a in history.items if a.activation_id not in held
        )
        look = look_at_flights(
            flights,
            history.items,
            held,
            skew=skew,
            read_at=history.started,
            reaches=history.reaches,
        )
        if not (wait and look.waiting) or clock.time() >= give_up:
            return look
        await clock.sleep(_POLL)


def _describe(activation: Activation) -> str:
    return (
        f"{activation.activation_id} ({phone_of(activation)}, created "
        f"{local_time(activation.created_at)}, {activation.activation_status}, expires "
        f"{local_time(activation.expire_at)})"
    )


def _warn_ambiguous(look: FlightLook, said: set[str] | None) -> None:
    """A WARNING per group of flights whose numbers cannot be told from someone else's
    (``said``: the ids already named, not named again)."""
    for flights, candidates in look.ambiguous:
        ids = {a.activation_id for a in candidates}
        if said is not None:
            if ids <= said:
                continue
            said |= ids
        service_id, country_id, _ = offer_of(flights[0].offer)
        logger.warning(
            "%d order%s for %s/%s of a process that died in flight (the first left at %s) "
            "may have opened some of these %d numbers that no process on this key holds, "
            "and recovery cannot tell which: %s; none is taken - each stays active (its "
            "price reserved) until it expires, unless cancelled by hand",
            len(flights),
            "" if len(flights) == 1 else "s",
            service_id,
            country_id,
            local_time(min(f.left for f in flights)),
            len(candidates),
            "; ".join(_describe(a) for a in candidates),
        )


async def _take_flights(client: AsyncPlatfone, said: set[str] | None = None) -> list[Activation]:
    """Take over the numbers the orders of dead processes placed (claimed, journaled as
    this process's, the order's slot bound to the number; their flights ended), and end
    the flights that placed nothing (their slots freed).
    A failure to look is a WARNING: the flights stay for a later recovery."""
    limits = client._http.limits
    try:
        look = await _look(client, wait=True)
    except PlatfoneError as exc:
        logger.warning(
            "looking for numbers the orders of a process that died in flight may have "
            "opened: %s: %s; left for a later recovery",
            type(exc).__name__,
            exc,
        )
        return []
    if look.waiting:
        logger.info("an order of a live process is still in flight: orphaned orders wait")
        return []
    _warn_ambiguous(look, said)
    for flight in look.placed_nothing:
        logger.info("an order for %s of a process that died placed nothing", flight.offer)
        await limits.flight_placed_nothing(flight)
    taken = []
    for flight, activation in look.taken:
        aid = activation.activation_id
        (claimed,) = await limits.store.claim([aid])
        if not claimed:
            continue  # another recovery took it first (and ends the flight)
        expire_at = activation.expire_at.timestamp()
        await limits.journal_opened(aid, activation.to_json(), expire_at)
        await limits.flight_placed(flight, aid, expire_at)
        logger.info(
            "activation %s: placed by an order of a process that died in flight; taken over",
            aid,
        )
        taken.append(activation)
    return taken


async def _settle_one(client: AsyncPlatfone, state: Activation, interval: float) -> Settled | None:
    """Settle one taken number; None when it cannot be settled (it stays journaled, or,
    unknown to the key, is dropped), said in a WARNING. Its end (finalized, cancelled,
    seen ended) takes it out of the journal; one left to expire stays there, open, for
    the recovery after this process's (a code may still come)."""
    aid = state.activation_id
    try:
        # The dead holder may have died before its code reached anyone: deliver it again.
        settled = await settle(client, state, interval=interval, code_seen=False)
    except NotFoundError:
        logger.warning("journaled activation %s: unknown to this key; dropped", aid)
        await client._http.limits.journal_seen({}, [aid])
        return None
    except PlatfoneError as exc:
        logger.warning("recovering %s: %s: %s; left in the journal", aid, type(exc).__name__, exc)
        return None
    return settled


async def _settle_all(
    client: AsyncPlatfone, states: list[Activation], interval: float, who: str
) -> list[Settled]:
    """Settle ``states`` at once; a cancellation leaves the rest journaled, saying so."""
    done: dict[str, Settled] = {}

    async def one(state: Activation) -> None:
        settled = await _settle_one(client, state, interval)
        if settled is not None:
            done[state.activation_id] = settled

    try:
        async with anyio.create_task_group() as tg:
            for state in states:
                tg.start_soon(one, state)
    except BaseException:
        left = len(states) - len(done)
        if left:
            logger.warning(
                "%s stopped: %d number%s left in the journal, for a later recover()",
                who,
                left,
                "" if left == 1 else "s",
            )
        raise
    results = [done[s.activation_id] for s in states if s.activation_id in done]
    _summarize(results, who)
    return results


def _summarize(results: list[Settled], who: str) -> None:
    if not results:
        return
    counts = dict.fromkeys(SessionOutcome, 0)
    for settled in results:
        counts[settled.outcome] += 1
    logger.warning(
        "%s settled %d number%s left by a process that ended: %d finalized, %d cancelled "
        "without an SMS (they count against the 24 h success rate, as they would have "
        "anyway), %d left to expire, %d already ended",
        who,
        len(results),
        "" if len(results) == 1 else "s",
        counts[SessionOutcome.FINALIZED],
        counts[SessionOutcome.CANCELED],
        counts[SessionOutcome.LEFT_TO_EXPIRE],
        counts[SessionOutcome.ALREADY_ENDED],
    )


async def recover(client: AsyncPlatfone, *, interval: float = 10.0) -> list[Settled]:
    """Take over and settle the numbers of lapsed owners, and those their orders in
    flight placed (see ``AsyncPlatfone.recover``)."""
    states = await _take_lapsed(client) + await _take_flights(client)
    return await _settle_all(client, states, interval, "recover()")


class OrphanWatcher:
    """``recover_orphans=True``: looks at the journal every ``every`` seconds (at lapsed
    owners' flights every ``_FLIGHTS_EVERY``) and settles what lapsed owners left, each
    number in a task of its own, until cancelled."""

    def __init__(self, client: AsyncPlatfone, every: float, interval: float = 10.0) -> None:
        self.client = client
        self.every = every
        self.interval = interval
        self._said: set[str] = set()  # numbers named in an ambiguity WARNING already
        self._looking = False  # a look at the flights is under way

    async def run(self) -> None:
        clock = self.client.clock
        flights_due = clock.monotonic()
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    states = await _take_lapsed(self.client)
                except PlatfoneError as exc:  # the store failed: look again later
                    logger.debug("looking for orphaned numbers: %s", exc)
                    states = []
                self._settle(tg, states)
                if not self._looking and clock.monotonic() >= flights_due:
                    self._looking = True
                    flights_due = clock.monotonic() + _FLIGHTS_EVERY
                    tg.start_soon(self._flights, tg)
                await clock.sleep(self.every)

    async def _flights(self, tg: anyio.abc.TaskGroup) -> None:
        try:
            states = await _take_flights(self.client, self._said)
        except PlatfoneError as exc:  # the store failed: look again later
            logger.debug("looking for orphaned orders in flight: %s", exc)
            return
        finally:
            self._looking = False
        self._settle(tg, states)

    def _settle(self, tg: anyio.abc.TaskGroup, states: list[Activation]) -> None:
        if states:
            logger.warning(
                "taking over %d number%s left by a process that ended",
                len(states),
                "" if len(states) == 1 else "s",
            )
            tg.start_soon(_settle_all, self.client, states, self.interval, "recover_orphans")


publish(OpenActivation)
