"""The activation state machine and the money it moves.

Every rule here is the reference's: an order reserves its price; the first SMS bills
it; cancelling or expiring without an SMS releases it; an approved report refunds a
billed activation. Time is whatever the caller says ``now`` is: expiry and promised
SMS deliveries are applied lazily by :meth:`Ledger.sweep` before anything reads state.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

from ._catalog import Catalog, Offer, pick_offer
from ._records import (
    ACTIVE,
    BILLED,
    CANCELED,
    EXPIRED,
    FINALIZED,
    REFUNDED,
    RELEASED,
    RESERVED,
    RETRY_RECEIVED,
    RETRY_REQUESTED,
    SMS_RECEIVED,
    SMS_REQUESTED,
    Account,
    ActivationRecord,
    EmulatorEvent,
    OrderToken,
    ReportRecord,
)
from ._sms import SmsScheduler
from ._wire import ORDER_NOT_FOUND, WireError, bad_request, not_found, rate_limited, unix

__all__ = ["Ledger"]

DAY = 86_400.0
SUCCESS_RATE_THRESHOLD = 0.07
SUCCESS_RATE_MIN_ORDERS = 10


class Ledger:
    """Accounts, activations and reports, and every transition between their states."""

    def __init__(
        self,
        catalog: Catalog,
        rng: random.Random,
        scheduler: SmsScheduler,
        emit: Callable[[EmulatorEvent], None],
    ) -> None:
        self.catalog = catalog
        self.rng = rng
        self.scheduler = scheduler
        self.emit = emit
        self.accounts: dict[str, Account] = {}
        self.activations: dict[str, ActivationRecord] = {}
        self.reports: dict[str, ReportRecord] = {}
        self.tokens: dict[str, OrderToken] = {}
        self.activation_lifetime = 1200
        self.max_active: int | None = 20
        self.success_rate_check = True
        self.low_balance_threshold = 100
        #: Seconds a 409's ``orderId`` stays good for; after that it is "Order not found".
        self.order_token_lifetime = 600.0
        self._expiries: list[tuple[int, str]] = []

    # -- accounts ---------------------------------------------------------------------

    def account(self, api_key: str | None) -> Account:
        account = self.accounts.get(api_key or "")
        if account is None:
            raise WireError(401, "UnauthorizedException", "missing or unknown X-Api-Key")
        return account

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

    def note_balance(self, account: Account, now: float) -> None:
        """Announce the moment the available balance drops below the threshold."""
        low = account.available < self.low_balance_threshold
        if low and not account.low_balance:
            data = {**account.balance_json(), "balance": account.available}
            self.emit(EmulatorEvent("account.low_balance", account.api_key, data, now))
        account.low_balance = low

    # -- time -------------------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """Apply everything due by ``now``: promised SMS, then expiries, in time order."""
        while (sms := self.scheduler.pop_due(now)) is not None:
            self._expire_due(sms.due)
            activation = self.activations.get(sms.activation_id)
            if activation is not None and activation.sms_round == sms.round:
                self.deliver(activation, sms.code, sms.text, sms.due)
        self._expire_due(now)

    def _expire_due(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, activation_id = heapq.heappop(self._expiries)
            activation = self.activations[activation_id]
            if activation.activation_status == ACTIVE:
                self._end(activation, EXPIRED, activation.expire_at)

    def _end(self, activation: ActivationRecord, status: str, at: float) -> None:
        account = self.accounts[activation.api_key]
        activation.activation_status = status
        activation.updated_at = unix(at)
        account.active_ids.discard(activation.activation_id)
        if activation.billing_status == RESERVED:
            activation.billing_status = RELEASED
            account.reserved -= activation.price
            self.note_balance(account, at)

    # -- ordering ---------------------------------------------------------------------

    def create(
        self,
        account: Account,
        service_id: str,
        country_id: str,
        *,
        max_price: int | None,
        order_id: str | None,
        quality_factor: float | None,
        now: float,
    ) -> ActivationRecord:
        if not account.email_verified:
            raise WireError(403, "EmailNotVerifiedException", "verify the account's email first")
        self._check_block(account, now)  # a block stands even with the rate check off
        if self.success_rate_check:
            self._check_success_rate(account, now)
        if self.max_active is not None and len(account.active_ids) >= self.max_active:
            raise WireError(
                429,
                "TooManyActivationsException",
                f"the account already has {len(account.active_ids)} active activations "
                f"(limit {self.max_active}); finalize or cancel one first",
            )
        if service_id not in self.catalog.services:
            raise bad_request(f"unknown service_id {service_id!r}")
        if country_id not in self.catalog.countries:
            raise bad_request(f"unknown country_id {country_id!r}")
        token = self._token(account, order_id, service_id, country_id, now)
        if token is not None and quality_factor is None:
            quality_factor = token.quality_factor
        offer = self._choose_offer(
            account, token, service_id, country_id, max_price, quality_factor, now
        )
        if account.available < offer.price:
            raise WireError(
                402,
                "PaymentRequiredException",
                f"available balance {account.available} is below the price {offer.price}",
            )
        activation = self._open(account, service_id, country_id, offer, now)
        if token is not None:
            token.used_by = activation.activation_id
        return activation

    def _token(
        self,
        account: Account,
        order_id: str | None,
        service_id: str,
        country_id: str,
        now: float,
    ) -> OrderToken | None:
        """The order a continuation token continues; 404 "Order not found" when it is
        unknown, another account's, used up or past its lifetime (as Platfone answers)."""
        if order_id is None:
            return None
        token = self.tokens.get(order_id)
        if (
            token is None
            or token.api_key != account.api_key
            or token.used_by is not None
            or now - token.created_at > self.order_token_lifetime
        ):
            raise not_found(ORDER_NOT_FOUND)
        if (token.service_id, token.country_id) != (service_id, country_id):
            raise bad_request(
                f"order_id {order_id!r} continues an order for "
                f"{token.service_id}/{token.country_id}, not {service_id}/{country_id}"
            )
        return token

    def _choose_offer(
        self,
        account: Account,
        token: OrderToken | None,
        service_id: str,
        country_id: str,
        max_price: int | None,
        quality_factor: float | None,
        now: float,
    ) -> Offer:
        stock = [o for o in self.catalog.offers(service_id, country_id) if o.count > 0]
        if not stock:
            raise WireError(
                404,
                "NoNumbersAvailableException",
                f"no numbers available for {service_id} in {country_id}",
            )
        factor = 50.0 if quality_factor is None else quality_factor
        remembered = None
        if token is not None and any(o is token.offer for o in stock):
            remembered = token.offer
        if remembered is not None and (max_price is None or remembered.price <= max_price):
            return remembered
        affordable = [o for o in stock if max_price is None or o.price <= max_price]
        offer = pick_offer(affordable, factor)
        if offer is not None:
            return offer
        nearest = min(stock, key=lambda o: o.price)
        if token is None:
            token = OrderToken(
                self.new_id(), account.api_key, service_id, country_id, factor, nearest, now
            )
            self.tokens[token.order_id] = token
        token.offer = nearest
        raise WireError(
            409,
            "MaxPriceExceededException",
            f"no number at or below max_price {max_price}; the nearest is {nearest.price}",
            extra={"suggestedPrice": nearest.price, "orderId": token.order_id},
        )

    def _check_block(self, account: Account, now: float) -> None:
        if account.blocked_until is not None:
            if now < account.blocked_until:
                raise rate_limited(
                    "LowSuccessRateException",
                    "the account is blocked for 24 hours: SMS success rate below 7%",
                    account.blocked_until,
                )
            account.blocked_until = None
            account.success_rate_since = now

    def _check_success_rate(self, account: Account, now: float) -> None:
        since = max(now - DAY, account.success_rate_since)
        orders = succeeded = failed = 0
        for activation_id in reversed(account.activation_ids):
            activation = self.activations[activation_id]
            if activation.created_at <= since:
                break
            orders += 1
            if activation.received_sms:
                succeeded += 1
            elif activation.activation_status in (EXPIRED, CANCELED):
                failed += 1
        decided = succeeded + failed
        if orders < SUCCESS_RATE_MIN_ORDERS or not decided:
            return
        if succeeded / decided < SUCCESS_RATE_THRESHOLD:
            account.blocked_until = now + DAY
            raise rate_limited(
                "LowSuccessRateException",
                f"SMS success rate {succeeded}/{decided} is below 7% over the last "
                f"{orders} orders; the account is blocked for 24 hours",
                account.blocked_until,
            )

    def _open(
        self, account: Account, service_id: str, country_id: str, offer: Offer, now: float
    ) -> ActivationRecord:
        created = unix(now)
        activation = ActivationRecord(
            activation_id=self.new_id(),
            api_key=account.api_key,
            service_id=service_id,
            country_id=country_id,
            phone=self._phone(country_id),
            price=offer.price,
            created_at=created,
            updated_at=created,
            expire_at=created + self.activation_lifetime,
            cancelable_after=None if offer.cancel_after is None else created + offer.cancel_after,
            is_retriable=offer.retriable,
            quality=offer.quality,
        )
        offer.count -= 1
        account.reserved += offer.price
        account.activation_ids.append(activation.activation_id)
        account.active_ids.add(activation.activation_id)
        self.activations[activation.activation_id] = activation
        heapq.heappush(self._expiries, (activation.expire_at, activation.activation_id))
        self.scheduler.waiting_started(activation.activation_id, service_id, 0, now, offer.quality)
        self.note_balance(account, now)
        return activation

    def _phone(self, country_id: str) -> str:
        return self.catalog.countries[country_id].phone(self.rng)

    # -- one activation ---------------------------------------------------------------

    def owned(self, account: Account, activation_id: str) -> ActivationRecord:
        activation = self.activations.get(activation_id)
        if activation is None or activation.api_key != account.api_key:
            raise not_found(f"activation {activation_id!r} not found")
        return activation

    def retry(self, activation: ActivationRecord, now: float) -> None:
        _require(
            "retry",
            activation.sms_status in (SMS_RECEIVED, RETRY_RECEIVED),
            f"sms_status is {activation.sms_status}, retry needs smsReceived or retryReceived",
        )
        _require_active("retry", activation)
        _require("retry", activation.is_retriable, "is_retriable is false")
        activation.sms_status = RETRY_REQUESTED
        activation.sms_round += 1
        activation.updated_at = unix(now)
        self.scheduler.waiting_started(
            activation.activation_id,
            activation.service_id,
            activation.sms_round,
            now,
            activation.quality,
        )

    def cancel(self, activation: ActivationRecord, now: float) -> None:
        _require_active("cancel", activation)
        _require(
            "cancel",
            activation.sms_status == SMS_REQUESTED,
            f"sms_status is {activation.sms_status}, cancel needs smsRequested",
        )
        allowed = activation.cancelable_after
        _require("cancel", allowed is not None, "cancelable_after is null: it cannot be canceled")
        _require(
            "cancel",
            allowed is not None and now >= allowed,
            f"cancelable_after {allowed} has not passed yet",
        )
        self._end(activation, CANCELED, now)

    def finalize(self, activation: ActivationRecord, now: float) -> None:
        _require(
            "finalize",
            activation.sms_status in (SMS_RECEIVED, RETRY_REQUESTED, RETRY_RECEIVED),
            f"sms_status is {activation.sms_status}, finalize needs smsReceived, "
            "retryRequested or retryReceived",
        )
        _require_active("finalize", activation)
        _require(
            "finalize",
            activation.billing_status == BILLED,
            f"billing_status is {activation.billing_status}, finalize needs billed",
        )
        self._end(activation, FINALIZED, now)

    def deliver(self, activation: ActivationRecord, code: str, text: str, at: float) -> bool:
        """An SMS reaches the number; False when the activation takes no SMS now."""
        if activation.activation_status != ACTIVE:
            return False
        account = self.accounts[activation.api_key]
        if activation.sms_status == SMS_REQUESTED:
            activation.sms_status = SMS_RECEIVED
            activation.billing_status = BILLED
            account.reserved -= activation.price
            account.total -= activation.price
        elif activation.sms_status == RETRY_REQUESTED:
            activation.sms_status = RETRY_RECEIVED
        else:
            return False  # the API shows the first SMS until a retry asks for another
        activation.sms_code = code
        activation.sms_text = text
        activation.updated_at = unix(at)
        activation.received_sms = True
        self.emit(EmulatorEvent("activation.updated", activation.api_key, activation.to_json(), at))
        self.note_balance(account, at)
        return True

    def end_by_server(self, activation: ActivationRecord, status: str, now: float) -> None:
        """The server ends an active activation itself (the control API's expire,
        cancel and finalize): no preconditions but being active, and finalizing needs
        its SMS; the money moves as for the user's own call."""
        if activation.activation_status != ACTIVE:
            raise ValueError(
                f"activation {activation.activation_id} is {activation.activation_status}, "
                "not active"
            )
        if status == FINALIZED and activation.billing_status != BILLED:
            raise ValueError(f"activation {activation.activation_id} has no billed SMS to finalize")
        if status == EXPIRED:
            activation.expire_at = unix(now)
        self._end(activation, status, now)

    def summary(self, account: Account) -> dict[str, Any]:
        """What the account's activations came to: orders, money and what is open."""
        records = [self.activations[i] for i in account.activation_ids]
        by_billing = {RESERVED: 0, BILLED: 0, RELEASED: 0, REFUNDED: 0}
        by_status = {ACTIVE: 0, FINALIZED: 0, CANCELED: 0, EXPIRED: 0}
        for record in records:
            by_billing[record.billing_status] = by_billing.get(record.billing_status, 0) + 1
            by_status[record.activation_status] = by_status.get(record.activation_status, 0) + 1
        return {
            "orders_placed": len(records),
            "billed": by_billing[BILLED],
            "refunded": by_billing[REFUNDED],
            "released": by_billing[RELEASED],
            "reserved": by_billing[RESERVED],
            "active": by_status[ACTIVE],
            "finalized": by_status[FINALIZED],
            "canceled": by_status[CANCELED],
            "expired": by_status[EXPIRED],
            "amount_billed": sum(r.price for r in records if r.billing_status == BILLED),
            "amount_refunded": sum(r.price for r in records if r.billing_status == REFUNDED),
            "reports": len(account.report_ids),
            "balance": {**account.balance_json(), "available": account.available},
            "on_hold": account.on_hold,
            "blocked_until": account.blocked_until,
        }

    # -- lists ------------------------------------------------------------------------

    def history(
        self, account: Account, page: int, limit: int, exclude_active: bool = False
    ) -> dict[str, Any]:
        """A page of the account's activations, newest first; ``exclude_active`` (sent by
        Platfone's web app) leaves out those still active."""
        ids = account.activation_ids[::-1]
        if exclude_active:
            ids = [i for i in ids if i not in account.active_ids]
        items = [self.activations[i].to_json() for i in page_of(ids, page, limit)]
        return {"activations": items, **paging(len(ids), page, limit)}


def _require(action: str, condition: bool, failure: str) -> None:
    if not condition:
        raise WireError(409, "ActivationStateException", f"cannot {action}: {failure}")


def _require_active(action: str, activation: ActivationRecord) -> None:
    _require(
        action,
        activation.activation_status == ACTIVE,
        f"activation_status is {activation.activation_status}, {action} needs active",
    )


def page_of(items: list[str], page: int, limit: int) -> list[str]:
    return items[(page - 1) * limit : page * limit]


def paging(total: int, page: int, limit: int) -> dict[str, int]:
    return {"page": page, "limit": limit, "pages": -(-total // limit), "total": total}
