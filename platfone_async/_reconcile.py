"""Reconciling an order whose outcome is unknown, through the activation history.

What reconciliation promises, and what a caller does with its verdicts, is told once, in
docs/guides/reliability.md ("Reconciliation"); this is how the history is searched.

1. **The window.** The order was created, if at all, between the moment its request
   left and the moment the failure was seen: ``[sent_at - skew, failed_at + skew]``,
   where ``skew`` is ``RetryPolicy.clock_skew``, widened when this key's orders showed
   the server's ``created_at`` further from the local clock than that.
2. **Candidates.** Activations in the history for the same service and country, created
   inside the window, within the order's ``max_price``, and never handed out by an order
   of this key in this process (the :class:`OrderBook` remembers every id it handed out).
3. **Who owns what.** Every order of the key whose request has left and whose outcome is
   not settled is in the book. A candidate that an order still in flight could own is
   not judged until that order has its answer (it may be that order's number). On a
   shared backend the fleet's orders in flight count too: each process tells the store
   when an order leaves and when it lands, after claiming its activation. An order whose
   process died in flight (its owner's lease lapsed) is waited for no longer, but a
   candidate it could own is never taken: it may be that order's number, and ours may
   never have arrived (crash recovery deals with such numbers).
   Candidates are then matched to the failed orders whose windows hold them, oldest
   first, each to the order whose window closes first: an order gets the candidate
   matched to it. A candidate none of our orders can explain was placed by someone else
   (another process, the dashboard): then the outcome cannot be decided.
4. **Lookups.** The history is read ``reconcile_delays`` seconds after the failure (it
   may lag behind the order: a first miss is not the last word). Reads are shared: one
   read that began after an order's lookup was due serves every order waiting, so ten
   failed orders cost a few of the history's 6 calls a minute, not thirty.
5. **Verdicts.** ``FOUND`` at the first lookup that matches; ``ABSENT`` when every lookup
   read the history and found nothing; ``UNDECIDED`` when a foreign candidate sits in
   the window, the history could not be read, or the window lies too far back in it.

About 460 lines in one module on purpose: the order book and the lookup share one lock
and one notion of who owns which candidate, and the rules above read as one argument.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import attrs

from ._clock import Clock
from ._errors import PlatfoneError
from ._models import Activation, Page
from ._retry import RetryPolicy, SendTrace

if TYPE_CHECKING:
    from ._ratelimit import KeyLimits

__all__ = [
    "OrderBook",
    "PendingOrder",
    "Verdict",
    "VerdictKind",
    "book_for",
    "matching",
    "read_back",
    "reconcile",
]

logger = logging.getLogger("platfone_async")

#: How often a task waiting for another's history read, or for an order in flight, looks.
_POLL = 0.25
#: Activations per history page read (the API's maximum).
_PAGE_SIZE = 50
#: At most this many pages are read back to reach a window's start.
_MAX_PAGES = 10
#: A handed-out id is forgotten after this long: no window reaches that far back.
_KNOWN_FOR = 3600.0
#: An undecided order explains candidates in its window for this long.
_UNDECIDED_FOR = 1800.0
#: The longest a reconciliation waits for another order's answer (a request without a
#: timeout could keep it waiting for ever).
_IN_FLIGHT_WAIT = 120.0

FetchPage = Callable[..., Awaitable[Page[Activation]]]
FetchOne = Callable[[str], Awaitable[Activation]]
KnownElsewhere = Callable[[Iterable[str]], Awaitable[set[str]]]
#: (service_id, country_id, max_price) of an order.
Offer = tuple[str, str, int | None]
FlightsElsewhere = Callable[[], Awaitable[list[Offer]]]


class VerdictKind(enum.Enum):
    FOUND = "found"
    ABSENT = "absent"
    UNDECIDED = "undecided"


@attrs.frozen
class Verdict:
    """What reconciliation concluded about one order."""

    kind: VerdictKind
    window: tuple[float, float]
    activation: Activation | None = None
    reason: str = ""
    candidates: tuple[Activation, ...] = ()


@attrs.define(eq=False)
class PendingOrder:
    """One order of a key from before it leaves until its outcome is settled."""

    service_id: str
    country_id: str
    max_price: int | None
    trace: SendTrace
    #: When its failure was seen (clock.time()); None while in flight or not sent.
    failed_at: float | None = None
    #: Its window once it failed: (start, end) on the clock, skew included.
    window: tuple[float, float] | None = None
    claimed: str | None = None
    #: How many history reads had started when it failed: only a later one can show it.
    reads_before: int = 0
    #: Until when an undecided order stays in the book to explain what it may have opened.
    keep_until: float | None = None

    def same_offer(self, activation: Activation) -> bool:
        return (
            activation.service_id == self.service_id
            and activation.country_id == self.country_id
            and (self.max_price is None or activation.price <= self.max_price)
        )

    def could_own(self, activation: Activation, skew: float) -> bool:
        """Whether ``activation`` could be this order's, by offer and time."""
        if not self.same_offer(activation):
            return False
        created = activation.created_at.timestamp()
        if self.window is not None:
            return self.window[0] <= created <= self.window[1]
        sent_at = self.trace.sent_at
        return self.trace.reached and sent_at is not None and created >= sent_at - skew


def _could_own(flights: Iterable[Offer], candidates: Iterable[Activation]) -> bool:
    """Whether an order in flight for one of ``flights`` could have opened a candidate.

    Another process's order is judged by its offer alone: when it left is on that
    process's clock, and it is in flight for seconds, so waiting for it costs little.
    """
    return any(
        activation.service_id == service_id
        and activation.country_id == country_id
        and (max_price is None or activation.price <= max_price)
        for service_id, country_id, max_price in flights
        for activation in candidates
    )


@attrs.frozen
class _Snapshot:
    #: The number of the read (reads are numbered as they start).
    seq: int
    #: When it started (clock.time()).
    started: float
    #: Windows starting after this are wholly covered (-inf: the whole history was read).
    reaches: float
    items: tuple[Activation, ...]


class OrderBook:
    """One key's orders in flight or undecided, and the ids its orders handed out.

    Shared by every client of the key in the process (it lives with the key's limits),
    and safe across event loops: its state is guarded by a lock held only between awaits.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._orders: list[PendingOrder] = []
        self._known: dict[str, float] = {}
        self._deviations: deque[float] = deque(maxlen=64)
        self._snapshot: _Snapshot | None = None
        self._failure: tuple[int, float, PlatfoneError] | None = None
        self._reading = False
        self._reads = 0  # history reads started so far

    def __repr__(self) -> str:
        return f"<OrderBook orders={len(self._orders)} known={len(self._known)}>"

    def open(
        self, service_id: str, country_id: str, max_price: int | None, trace: SendTrace
    ) -> PendingOrder:
        """Register an order about to be sent."""
        order = PendingOrder(service_id, country_id, max_price, trace)
        with self._lock:
            self._prune()
            self._orders.append(order)
        return order

    def close(self, order: PendingOrder) -> None:
        """The order's outcome is settled (or it never left): forget it."""
        with self._lock:
            if order in self._orders:
                self._orders.remove(order)

    def mark_failed(self, order: PendingOrder, configured_skew: float) -> float:
        """The order's request failed now: fix its window; return the skew it used."""
        skew = self.skew(configured_skew)
        with self._lock:
            if order.window is None:
                now = self.clock.time()
                sent_at = order.trace.sent_at if order.trace.sent_at is not None else now
                order.failed_at = now
                order.window = (sent_at - skew, now + skew)
                order.reads_before = self._reads
        return skew

    def keep_undecided(self, order: PendingOrder, configured_skew: float) -> None:
        """Keep an order whose outcome stays unknown, to explain what it may have opened."""
        self.mark_failed(order, configured_skew)
        with self._lock:
            order.keep_until = self.clock.time() + _UNDECIDED_FOR
            if order not in self._orders:
                self._orders.append(order)

    def handed_out(
        self, order: PendingOrder | None, activation: Activation, received_at: float
    ) -> None:
        """``activation`` went to a caller (the order's answer, or a reconciliation)."""
        with self._lock:
            self._known[activation.activation_id] = self.clock.time()
            if order is not None and order.trace.sent_at is not None:
                created = activation.created_at.timestamp()
                # created_at is whole seconds (rounded down) on the server's clock.
                ahead = created - received_at
                behind = order.trace.sent_at - 1.0 - created
                self._deviations.append(max(0.0, ahead, behind))
            if order is not None and order in self._orders:
                self._orders.remove(order)

    def learn_known(self, activation_ids: Iterable[str]) -> None:
        """Ids handed out elsewhere (another process of the fleet): never candidates."""
        with self._lock:
            now = self.clock.time()
            for activation_id in activation_ids:
                self._known.setdefault(activation_id, now)

    def is_known(self, activation_id: str) -> bool:
        with self._lock:
            return activation_id in self._known

    def skew(self, configured: float) -> float:
        """The margin a window gets on each side: configured, or what was seen, if more."""
        with self._lock:
            seen = max(self._deviations, default=0.0)
        return max(configured, seen + 1.0) if seen > 0 else configured

    # -- reading the history, once for everyone waiting --------------------------------

    async def read(
        self, after: int, due: float, back_to: float, fetch_page: FetchPage
    ) -> _Snapshot:
        """A history snapshot from a read numbered above ``after`` (it began after the
        caller's order failed) that began at ``due`` or later and covers windows starting
        at ``back_to``. Concurrent callers share one read."""
        while True:
            with self._lock:
                snapshot = self._snapshot
                if (
                    snapshot is not None
                    and snapshot.seq > after
                    and snapshot.started >= due
                    and back_to > snapshot.reaches
                ):
                    return snapshot
                failure = self._failure
                if failure is not None and failure[0] > after and failure[1] >= due:
                    raise failure[2]
                if not self._reading:
                    self._reading = True
                    self._reads += 1
                    seq = self._reads
                    back = min([back_to, *self._window_starts()])
                    break
            await self.clock.sleep(_POLL)  # another task is reading: use its snapshot
        started = self.clock.time()
        try:
            snapshot = await read_back(fetch_page, back, seq, started)
        except PlatfoneError as error:
            with self._lock:
                self._failure = (seq, started, error)
            raise
        finally:
            with self._lock:
                self._reading = False
        with self._lock:
            if self._snapshot is None or self._snapshot.seq < seq:
                self._snapshot = snapshot
        return snapshot

    def _window_starts(self) -> list[float]:
        """Where the windows of the orders still looking begin (a read serves them all)."""
        return [
            o.window[0]
            for o in self._orders
            if o.window is not None and o.claimed is None and o.keep_until is None
        ]

    # -- matching ----------------------------------------------------------------------

    async def match(
        self,
        order: PendingOrder,
        snapshot: _Snapshot,
        skew: float,
        flights_elsewhere: FlightsElsewhere | None = None,
        known_elsewhere: KnownElsewhere | None = None,
        orphaned: FlightsElsewhere | None = None,
    ) -> tuple[Activation | None, tuple[Activation, ...]]:
        """(the activation matched to ``order``, or None; the foreign candidates, if any).

        Waits while an order still in flight could own one of the candidates (for at
        most ``_IN_FLIGHT_WAIT``; then they count as not ours): an order of this book,
        or one that another process of a fleet has in flight (``flights_elsewhere``).
        Such an order, once answered, claims its activation for the fleet before it
        lands: each look reads the fleet's orders in flight, then which candidates the
        fleet handed out meanwhile (``known_elsewhere``), which are no candidates. The
        candidates an order of a dead process could own (``orphaned``) are not ours to
        take: they come back as foreign.
        """
        give_up = self.clock.time() + _IN_FLIGHT_WAIT
        while True:
            flights: list[Offer] = []
            if flights_elsewhere is not None:
                flights = await flights_elsewhere()
                if known_elsewhere is not None:
                    # Read after the flights: an order lands only once its activation
                    # is claimed, so one no longer in flight has its id among these.
                    with self._lock:
                        ids = [c.activation_id for c in self._candidates(order, snapshot)]
                    if ids:
                        self.learn_known(await known_elsewhere(ids))
            with self._lock:
                candidates = self._candidates(order, snapshot)
                settled = not self._blocked(order, candidates, skew) and not _could_own(
                    flights, candidates
                )
                if not settled and self.clock.time() >= give_up:
                    return None, tuple(candidates)
            if settled:
                # Read outside the lock; an orphan never lands, so none can appear since.
                orphans = [] if orphaned is None or not candidates else await orphaned()
                with self._lock:
                    candidates = self._candidates(order, snapshot)
                    if not self._blocked(order, candidates, skew):  # still, after the read
                        if _could_own(orphans, candidates):
                            return None, tuple(candidates)
                        return self._assign(order, candidates)
            await self.clock.sleep(_POLL)

    def _candidates(self, order: PendingOrder, snapshot: _Snapshot) -> list[Activation]:
        seen: set[str] = set()
        found = []
        for activation in snapshot.items:
            aid = activation.activation_id
            if aid in seen or aid in self._known:
                continue
            seen.add(aid)
            if order.could_own(activation, 0.0):
                found.append(activation)
        found.sort(key=lambda a: a.created_at)
        return found

    def _blocked(self, order: PendingOrder, candidates: list[Activation], skew: float) -> bool:
        in_flight = [
            o
            for o in self._orders
            if o is not order and o.failed_at is None and o.trace.reached and o.claimed is None
        ]
        return any(o.could_own(c, skew) for o in in_flight for c in candidates)

    def _assign(
        self, order: PendingOrder, candidates: list[Activation]
    ) -> tuple[Activation | None, tuple[Activation, ...]]:
        """Claim a candidate for ``order``, or say the candidates are not all ours.

        ``order`` takes the oldest candidate such that every other candidate can still be
        matched to another failed order of ours. If every matching leaves one over, an
        order we did not send sits in the window: (None, the candidates). If a matching
        exists, ``order`` can always take one: when a candidate is another order's, that
        order finds nothing, so each placed activation still goes to exactly one caller.
        """
        if not candidates:
            return None, ()
        now = self.clock.time()
        others = [
            o
            for o in self._orders
            if o is not order
            and o.window is not None
            and o.claimed is None
            and (o.keep_until is None or o.keep_until > now)
        ]
        for candidate in candidates:
            rest = [c for c in candidates if c is not candidate]
            if _explained(rest, others):
                order.claimed = candidate.activation_id
                self._known[candidate.activation_id] = now
                return candidate, ()
        return None, tuple(candidates)

    def _prune(self) -> None:
        now = self.clock.time()
        self._orders = [o for o in self._orders if o.keep_until is None or o.keep_until > now]
        if len(self._known) > 1024:
            cutoff = now - _KNOWN_FOR
            self._known = {k: t for k, t in self._known.items() if t > cutoff}


def matching(
    candidates: Iterable[Activation], orders: Iterable[PendingOrder]
) -> dict[str, PendingOrder] | None:
    """Each candidate (oldest first) matched to its own order among ``orders``, by id:
    each to the one whose window closes first (optimal for windows on one line); None
    when one is left over."""
    free = list(orders)
    matched = {}
    for candidate in sorted(candidates, key=lambda a: a.created_at):
        owners = [o for o in free if o.could_own(candidate, 0.0)]
        if not owners:
            return None
        owner = min(owners, key=lambda o: o.window[1] if o.window is not None else 0.0)
        free.remove(owner)
        matched[candidate.activation_id] = owner
    return matched


def _explained(candidates: list[Activation], orders: list[PendingOrder]) -> bool:
    """Whether each candidate can go to its own order among ``orders``."""
    return matching(candidates, orders) is not None


async def read_back(fetch_page: FetchPage, back: float, seq: int, started: float) -> _Snapshot:
    """Read history pages (newest first) until they reach before ``back``."""
    items: list[Activation] = []
    page = 1
    while True:
        result = await fetch_page(page=page, limit=_PAGE_SIZE)
        items.extend(result.items)
        if not result.items or page >= result.pages:
            return _Snapshot(seq, started, float("-inf"), tuple(items))
        stamps = [a.created_at.timestamp() for a in result.items]
        newest_first = all(a >= b for a, b in itertools.pairwise(stamps))
        if newest_first and stamps[-1] < back:
            return _Snapshot(seq, started, stamps[-1], tuple(items))
        if page >= _MAX_PAGES:
            return _Snapshot(
                seq, started, stamps[-1] if newest_first else float("inf"), tuple(items)
            )
        page += 1


_BOOK_LOCK = threading.Lock()


def book_for(limits: KeyLimits) -> OrderBook:
    """The order book of the key whose limits these are (one per key, like the limits,
    and kept on them)."""
    root = limits.root  # a client with rate_limits=None looks through a view of them
    with _BOOK_LOCK:
        if root.order_book is None:
            root.order_book = OrderBook(root.clock)
        return root.order_book


async def reconcile(
    book: OrderBook,
    order: PendingOrder,
    policy: RetryPolicy,
    *,
    fetch_page: FetchPage,
    fetch_one: FetchOne,
    activation_id: str | None = None,
    known_elsewhere: KnownElsewhere | None = None,
    flights_elsewhere: FlightsElsewhere | None = None,
    flights_orphaned: FlightsElsewhere | None = None,
) -> Verdict:
    """Find out whether ``order`` (whose request just failed) was placed; see the module.

    ``activation_id`` is an id read from an answer that could not be decoded: it is
    looked up first. ``known_elsewhere`` says which ids other processes of a fleet
    handed out (so their orders are never taken for foreign ones), and
    ``flights_elsewhere`` which orders they have in flight (so that an activation one
    of those may own is not taken before that order has its answer), and
    ``flights_orphaned`` which orders were in flight when their process died (an
    activation one of those may own is never taken).
    """
    clock = book.clock
    skew = book.mark_failed(order, policy.clock_skew)
    assert order.window is not None
    assert order.failed_at is not None
    window, failed_at = order.window, order.failed_at
    if activation_id is not None:
        found = await _by_id(book, order, activation_id, fetch_one)
        if found is not None:
            return Verdict(VerdictKind.FOUND, window, found)
    reason = ""
    for delay in policy.reconcile_delays:
        due = failed_at + delay
        await clock.sleep(due - clock.time())
        try:
            snapshot = await book.read(order.reads_before, due, window[0], fetch_page)
        except PlatfoneError as error:
            reason = f"the activation history could not be read ({type(error).__name__}: {error})"
            continue
        if known_elsewhere is not None:
            try:
                book.learn_known(await known_elsewhere(a.activation_id for a in snapshot.items))
            except PlatfoneError as error:
                reason = f"the fleet's handed-out ids could not be read ({error})"
                continue
        if window[0] <= snapshot.reaches:
            return Verdict(
                VerdictKind.UNDECIDED,
                window,
                reason=f"the window lies more than {_MAX_PAGES * _PAGE_SIZE} activations back",
            )
        try:
            mine, foreign = await book.match(
                order, snapshot, skew, flights_elsewhere, known_elsewhere, flights_orphaned
            )
        except PlatfoneError as error:
            reason = f"the fleet's orders in flight or handed-out ids could not be read ({error})"
            continue
        if mine is not None:
            return Verdict(VerdictKind.FOUND, window, mine)
        if foreign:
            return Verdict(
                VerdictKind.UNDECIDED,
                window,
                reason=f"{len(foreign)} activations of this service and country that this "
                "process did not order, or that an order of a process that died in flight "
                "may have placed, were created in the window",
                candidates=foreign,
            )
    if reason:
        return Verdict(VerdictKind.UNDECIDED, window, reason=reason)
    return Verdict(VerdictKind.ABSENT, window)


async def _by_id(
    book: OrderBook, order: PendingOrder, activation_id: str, fetch_one: FetchOne
) -> Activation | None:
    """The activation an undecodable answer named, if it is this order's and not known."""
    try:
        activation = await fetch_one(activation_id)
    except PlatfoneError:  # not found, or unreadable: the history decides
        return None
    if not order.same_offer(activation):
        return None
    with book._lock:
        if activation.activation_id in book._known:
            return None
        order.claimed = activation.activation_id
        book._known[activation.activation_id] = book.clock.time()
    return activation
