"""Ordering for a session: in one country, or at the best offer among several.

:func:`order_in` places one country's order and, within ``price_ceiling``, follows a
409's suggested price. :class:`Shopper` is what ``client.activation(service_id, None |
[ids], prefer=...)`` orders with: it ranks the offers (``_offers``, one request to the
price list), orders the best, and goes on to the next offer when a country has no number
(``NoNumbersAvailableError``), wants more than the ceiling (a 409 whose suggested price
is above it) - never sending a ``max_price`` above the ceiling - or costs more than the
spend limit leaves (``SpendLimitError``, refused before it left). ``session.replace()``
asks it for the next number: the best offer in a country not tried yet, else again the
best of those tried.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import anyio

from . import _validate as check
from ._errors import (
    InvalidParameterError,
    MaxPriceExceededError,
    NoNumbersAvailableError,
    NotFoundError,
    SpendLimitError,
)
from ._validate import Prefer

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._client import AsyncPlatfone
    from ._models import Activation

__all__ = ["MAX_REORDERS", "Holdings", "Shopper", "check_prices", "order_in"]

logger = logging.getLogger("platfone_async")

#: At most this many orders follow a 409 ``MaxPriceExceededError`` within the ceiling.
MAX_REORDERS = 3


def check_prices(max_price: int | None, price_ceiling: int | None) -> None:
    """``max_price`` and ``price_ceiling`` in range, the first within the second."""
    if max_price is not None:
        check.max_price(max_price)
    if price_ceiling is not None:
        check.max_price(price_ceiling, "price_ceiling")
        if max_price is not None and max_price > price_ceiling:
            raise InvalidParameterError(
                "max_price", f"must not exceed price_ceiling ({price_ceiling})", max_price
            )


async def order_in(
    client: AsyncPlatfone,
    service_id: str,
    country_id: str,
    *,
    max_price: int | None,
    price_ceiling: int | None,
    quality_factor: float | None,
    wait_for_slot: bool,
) -> Activation:
    """Place the order; within ``price_ceiling``, follow a 409's suggested price."""
    price = max_price if max_price is not None else price_ceiling
    order_id: str | None = None
    reorders = 0
    fresh_start = False  # whether a stale continuation token was already dropped
    while True:
        try:
            # create_activation sees a request that has left through even when the task
            # is cancelled, and returns what it opened (the cancellation then lands at
            # the session's first checkpoint, where the number is settled). Waiting for
            # a slot or a token before that stays cancellable.
            return await client.create_activation(
                service_id,
                country_id,
                max_price=price,
                order_id=order_id,
                quality_factor=quality_factor,
                wait_for_slot=wait_for_slot,
            )
        except NotFoundError:
            # "Order not found": the 409's continuation token went stale. Its price is
            # still within the ceiling, so order afresh at it, once, without the token.
            if order_id is None or fresh_start:
                raise
            logger.debug("%s/%s: stale order_id; ordering afresh", service_id, country_id)
            fresh_start = True
            order_id = None
        except MaxPriceExceededError as error:
            suggested = error.suggested_price
            if (
                price_ceiling is None
                or suggested is None
                or suggested > price_ceiling
                or reorders >= MAX_REORDERS
            ):
                raise
            logger.debug(
                "%s/%s: no number at %s cents; ordering again at %s",
                service_id,
                country_id,
                price,
                suggested,
            )
            reorders += 1
            price = suggested
            order_id = error.order_id or order_id


class Shopper:
    """The orders of one session: the first at the best offer, the next on ``replace()``.

    ``candidates`` is the countries to choose among (None: every country that sells the
    service); ``countries`` lists those it opened a number in, in order.
    """

    __slots__ = (
        "candidates",
        "client",
        "countries",
        "max_price",
        "prefer",
        "price_ceiling",
        "quality_factor",
        "service_id",
        "wait_for_slot",
    )

    def __init__(
        self,
        client: AsyncPlatfone,
        service_id: str,
        country_id: str | Sequence[str] | None,
        *,
        prefer: Prefer,
        max_price: int | None,
        price_ceiling: int | None,
        quality_factor: float | None,
        wait_for_slot: bool,
    ) -> None:
        check_prices(max_price, price_ceiling)
        self.client = client
        self.service_id = check.service_id(service_id)
        if isinstance(country_id, str):
            self.candidates: tuple[str, ...] | None = (check.country_id(country_id),)
        else:
            self.candidates = check.country_ids(country_id)
        self.prefer = check.prefer(prefer)
        self.max_price = max_price
        self.price_ceiling = price_ceiling
        self.quality_factor = quality_factor
        self.wait_for_slot = wait_for_slot
        self.countries: list[str] = []

    @property
    def single(self) -> bool:
        """Whether one country was named: it is ordered in as is, without a ranking."""
        return self.candidates is not None and len(self.candidates) == 1

    async def order(self) -> Activation:
        """A number at the best offer: first in a country not tried yet, else again the
        best of those tried. Raises when none had a number: the first ``SpendLimitError``
        if the spend limit refused an offer, else the last offer's error."""
        if self.single:
            assert self.candidates is not None
            return await self._order_in(self.candidates[0])
        offers = await self.client.rank_offers(
            self.service_id, self.candidates, prefer=self.prefer, price_ceiling=self.price_ceiling
        )
        fresh = [o.country_id for o in offers if o.country_id not in self.countries]
        tried = [o.country_id for o in offers if o.country_id in self.countries]
        last: NoNumbersAvailableError | MaxPriceExceededError | None = None
        over_budget: SpendLimitError | None = None
        for country_id in fresh + tried:
            try:
                return await self._order_in(country_id)
            except NoNumbersAvailableError as error:
                last = error
                reason = "no number"
            except MaxPriceExceededError as error:
                last = error
                reason = f"{error.suggested_price} cents, above the ceiling"
            except SpendLimitError as error:  # refused unsent: a cheaper offer may fit
                over_budget = over_budget or error
                reason = f"{error.price} cents, more than the spend limit leaves"
            logger.info("%s/%s: %s; trying the next offer", self.service_id, country_id, reason)
        # The spend limit first: with room, an offer it refused might have had a number.
        if over_budget is not None:
            raise over_budget
        if last is not None:
            raise last
        raise self._nothing_offered()

    async def _order_in(self, country_id: str) -> Activation:
        activation = await order_in(
            self.client,
            self.service_id,
            country_id,
            max_price=self.max_price,
            price_ceiling=self.price_ceiling,
            quality_factor=self.quality_factor,
            wait_for_slot=self.wait_for_slot,
        )
        self.countries.append(country_id)
        return activation

    def _nothing_offered(self) -> NoNumbersAvailableError:
        where = "any country" if self.candidates is None else ", ".join(self.candidates)
        within = "" if self.price_ceiling is None else f" within {self.price_ceiling} cents"
        return NoNumbersAvailableError(
            f"the price list shows no number of {self.service_id} in {where}{within} "
            "(client-side; no order was sent)",
            status_code=404,
        )


class Holdings:
    """The numbers one session held, oldest first, the current one last; those it gave
    up are settled in the ``background`` task group (the session's block waits for
    them on leaving)."""

    __slots__ = ("_settling", "background", "shopper", "states")

    def __init__(self, shopper: Shopper, first: Activation) -> None:
        self.shopper = shopper
        self.states = [first]
        self.background: TaskGroup | None = None
        self._settling: set[anyio.CancelScope] = set()

    def abandon(self) -> None:
        """Stop settling the numbers given up (a second interruption): each says what it
        leaves, as settling does when it is cut short."""
        for scope in self._settling:
            scope.cancel()

    async def replace(
        self,
        current: Activation,
        settle: Callable[[Activation, Callable[[Activation], object]], Awaitable[Activation]],
    ) -> Activation:
        """Order the next number, then give ``current`` up to ``settle`` in the
        background; the new number. Raises (``current`` still held) when none is had."""
        assert self.background is not None, "replace() runs inside the session's block"
        fresh = await self.shopper.order()
        index = len(self.states) - 1
        self.states[index] = current
        self.states.append(fresh)

        def learn(state: Activation) -> None:
            self.states[index] = state

        async def give_up() -> None:
            # Shielded: a number opened is settled whatever ends the block, but for
            # abandon() (a second interruption), which cancels this scope itself.
            with anyio.CancelScope(shield=True) as scope:
                self._settling.add(scope)
                try:
                    learn(await settle(current, learn))
                except Exception as error:  # said, never raised into the block
                    logger.warning(
                        "could not settle %s, replaced: %s: %s",
                        current.activation_id,
                        type(error).__name__,
                        error,
                    )
                finally:
                    self._settling.discard(scope)

        self.background.start_soon(give_up)
        return fresh
