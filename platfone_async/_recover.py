"""The journal of open numbers, read (``open_activations()``) and recovered (``recover()``).

Every number an order of the SDK opens is journaled in the key's store with its owner
(one per process and key, alive while its lease is renewed), rewritten from each state
a client reads about it, and taken out when a client sees it end (``_orders`` keeps it
true). With a durable store (SQLite, Redis) the journal outlives the process: a number
whose owner's lease lapsed was left by a process that died, and is there to be taken
over and settled.

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
from typing import TYPE_CHECKING

import anyio
import attrs

from ._convert import decode
from ._errors import NotFoundError, PlatfoneError, ResponseDecodeError
from ._models import Activation, publish
from ._ratelimit import JournalEntry
from ._settle import SessionOutcome, Settled, settle

if TYPE_CHECKING:
    from ._client import AsyncPlatfone

__all__ = ["OpenActivation", "OrphanWatcher", "open_activations", "recover"]

logger = logging.getLogger("platfone_async")


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
    return found


async def _take_lapsed(client: AsyncPlatfone) -> list[Activation]:
    """Claim every journaled number whose owner's lease lapsed: their last states."""
    limits = client._http.limits
    lapsed = [e for e in await limits.journal() if not e.alive]
    if not lapsed:
        return []
    taken = await limits.journal_take([e.activation_id for e in lapsed])
    states = [_readable(e) for e, mine in zip(lapsed, taken, strict=True) if mine]
    return [state for state in states if state is not None]


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
    """Take over and settle the numbers of lapsed owners (see ``AsyncPlatfone.recover``)."""
    return await _settle_all(client, await _take_lapsed(client), interval, "recover()")


class OrphanWatcher:
    """``recover_orphans=True``: looks at the journal every ``every`` seconds and settles
    what lapsed owners left, each number in a task of its own, until cancelled."""

    def __init__(self, client: AsyncPlatfone, every: float, interval: float = 10.0) -> None:
        self.client = client
        self.every = every
        self.interval = interval

    async def run(self) -> None:
        clock = self.client.clock
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    states = await _take_lapsed(self.client)
                except PlatfoneError as exc:  # the store failed: look again later
                    logger.debug("looking for orphaned numbers: %s", exc)
                    states = []
                if states:
                    logger.warning(
                        "taking over %d number%s left by a process that ended",
                        len(states),
                        "" if len(states) == 1 else "s",
                    )
                    tg.start_soon(
                        _settle_all, self.client, states, self.interval, "recover_orphans"
                    )
                await clock.sleep(self.every)


publish(OpenActivation)
