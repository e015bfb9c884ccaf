"""Helpers for the fault suite: transports that time out or count, and the ledger checks.

- :class:`TimeoutTransport` gives in-process requests a read timeout on the virtual clock
  (``httpx.ASGITransport`` ignores timeouts): past it the client sees ``ReadTimeout``
  while the emulator either goes on and acts later (``keep_going``) or never acts.
- :class:`CountingTransport` counts requests in progress and response streams left open.
- :class:`Ledger` collects what callers were given and checks it against the emulator's
  own books: no double order, no number left active, no lost code, money adds up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.abc
import attrs
import httpx

import platfone_async as pf
from platfone_async.testing import EmulatorEvent, Offer, PlatfoneEmulator, SmsPolicy, VirtualClock

API_KEY = "sk-live-FAULTS-9f8e7d6c5b4a3210"
PRICE = 100


class TimeoutTransport(httpx.AsyncBaseTransport):
    """Raises ``httpx.ReadTimeout`` once a request outlives its read timeout on ``clock``.

    The request runs in ``background``; past the timeout it goes on there (the emulator
    acts when its delay ends) with ``keep_going``, else it is cancelled (it never acts).
    The caller sleeps on the clock and the request's end cancels that sleep: no task
    waits for another task to finish (the virtual clock's autojump could run ahead of
    such a wake-up on asyncio).
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        clock: VirtualClock,
        background: anyio.abc.TaskGroup,
        *,
        keep_going: bool | Callable[[httpx.Request], bool] = False,
    ) -> None:
        self.inner = inner
        self.clock = clock
        self.background = background
        self.keep_going = keep_going
        self.timeouts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if timeout is None:
            return await self.inner.handle_async_request(request)
        box: list[httpx.Response | Exception] = []
        waiting = anyio.CancelScope()
        working = anyio.CancelScope()

        async def work() -> None:
            with working:
                try:
                    response = await self.inner.handle_async_request(request)
                    await response.aread()
                    box.append(response)
                except Exception as exc:
                    box.append(exc)
            waiting.cancel()

        self.background.start_soon(work)
        try:
            with waiting:
                await self.clock.sleep(timeout)
        except BaseException:
            working.cancel()
            raise
        if not box:
            self.timeouts += 1
            keep_going = self.keep_going
            if not (keep_going(request) if callable(keep_going) else keep_going):
                working.cancel()
            raise httpx.ReadTimeout("timed out (virtual clock)", request=request)
        outcome = box[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class _CountedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, owner: CountingTransport) -> None:
        self.inner = inner
        self.owner = owner
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.owner.open -= 1
            await self.inner.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts requests in progress plus responses whose stream is not closed yet."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.open = 0
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.open += 1
        self.sent += 1
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.open -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CountedStream(response.stream, self),
            extensions=response.extensions,
        )


class RewritingTransport(httpx.AsyncBaseTransport):
    """Lets a test rewrite the answers of matching requests (``rewrite`` returns the new
    body, or None to keep it)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        rewrite: Callable[[httpx.Request, httpx.Response, bytes], bytes | None],
    ) -> None:
        self.inner = inner
        self.rewrite = rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        new = self.rewrite(request, response, body)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(
            response.status_code, headers=headers, content=body if new is None else new
        )


def new_emulator(clock: VirtualClock, **kwargs: Any) -> PlatfoneEmulator:
    """An emulator with ``API_KEY``, 10,000 cents, and telegram (SMS after 3 s) and google
    (no SMS) in the UK at ``PRICE``, cancellable after 60 s."""
    kwargs.setdefault("balance", 10_000)
    kwargs.setdefault("success_rate_check", False)
    emulator = PlatfoneEmulator(clock=clock, api_key=API_KEY, **kwargs)
    for service in ("telegram", "google"):
        emulator.catalog.set_offers(service, "uk", [Offer(PRICE, 0.8, 1_000, cancel_after=60)])
    emulator.set_sms_policy(SmsPolicy(delay=3), service_id="telegram")
    emulator.set_sms_policy(SmsPolicy(delay=3, probability=0.0), service_id="google")
    return emulator


def new_client(
    emulator: PlatfoneEmulator,
    clock: VirtualClock,
    background: anyio.abc.TaskGroup,
    *,
    keep_going: bool | Callable[[httpx.Request], bool] = False,
    wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
    **kwargs: Any,
) -> pf.AsyncPlatfone:
    """A client on the emulator through a :class:`TimeoutTransport` (5 s by default)."""
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=emulator.app)
    if wrap is not None:
        transport = wrap(transport)
    transport = TimeoutTransport(transport, clock, background, keep_going=keep_going)
    kwargs.setdefault("timeout", 5.0)
    return pf.AsyncPlatfone(
        API_KEY,
        base_url=emulator.base_url,
        http_client=httpx.AsyncClient(transport=transport),
        clock=clock,
        **kwargs,
    )


@attrs.define
class Ledger:
    """What the callers were given, to check against the emulator's books."""

    emulator: PlatfoneEmulator
    start_total: int = 0
    calls: int = 0
    handed_out: list[str] = attrs.Factory(list)
    unknown: list[pf.OrderOutcomeUnknownError] = attrs.Factory(list)
    codes_received: set[tuple[str, str]] = attrs.Factory(set)
    codes_delivered: set[tuple[str, str]] = attrs.Factory(set)
    sessions: list[pf.ActivationSession] = attrs.Factory(list)
    #: Each session that ended: (activation id, its outcome, the server's status then).
    endings: list[tuple[str, pf.SessionOutcome | None, str]] = attrs.Factory(list)

    def __attrs_post_init__(self) -> None:
        self.start_total = self.emulator.balance()["total"]
        self.emulator.add_listener(self._heard)

    def _heard(self, event: EmulatorEvent) -> None:
        code = event.data.get("sms_code") if event.type == "activation.updated" else None
        if code:
            self.codes_delivered.add((event.data["activation_id"], code))

    def received(self, state: pf.Activation) -> None:
        """A caller got this state from wait_for_sms / watch_activation."""
        if state.sms_code:
            self.codes_received.add((state.activation_id, state.sms_code))

    def ended(self, session: pf.ActivationSession) -> None:
        """A session's block has ended: note its outcome beside the server's state now,
        and the code it holds (a late one, found while settling, reached it there)."""
        aid = session.activation.activation_id
        status = self.emulator.activation(aid)["activation_status"]
        self.endings.append((aid, session.outcome, status))
        self.received(session.activation)

    def check(self, *, may_expire: Callable[[str], bool] | None = None) -> dict[str, int]:
        """The four checks; returns the totals (orders, unknown, double, leaked, lost).

        What the SDK did with each number a session held is judged, not just where the
        number ended up: one billed for its SMS must be ``finalized``, one without an
        SMS ``canceled`` (every offer here allows cancelling long before expiry, so an
        SDK that never cancels fails this even after every number has expired).
        ``expired`` passes only for the numbers ``may_expire(activation_id)`` names -
        those whose settling the test knows was defeated by faults past every retry.
        """
        emulator = self.emulator
        placed = {a["activation_id"]: a for a in emulator.activations()}
        # No double order: each placed order went to exactly one caller, or to a caller
        # told OrderOutcomeUnknownError; and no call placed more than one.
        assert len(self.handed_out) == len(set(self.handed_out))
        assert set(self.handed_out) <= set(placed)
        orphans = set(placed) - set(self.handed_out)
        assert len(orphans) <= len(self.unknown), (orphans, self.unknown)
        assert len(placed) <= self.calls
        # None left active, and each settled as the SDK should have settled it.
        leaked = []
        for session in self.sessions:
            aid = session.activation.activation_id
            state = _state(placed[aid])
            expected = ("finalized", "billed") if _billed(placed[aid]) else ("canceled", "released")
            excused = state[0] == "expired" and may_expire is not None and may_expire(aid)
            if state != expected and not excused:
                leaked.append((aid, state, session.outcome))
        assert [] == leaked
        # Each session's outcome is what the server showed when its block ended.
        told = [(a, o, s) for a, o, s in self.endings if o is None or _SHOWN.get(o) != s]
        assert [] == told
        # No lost code: every SMS delivered to a number a caller held reached that caller.
        held = set(self.handed_out)
        lost = {(a, c) for a, c in self.codes_delivered if a in held} - self.codes_received
        assert set() == lost
        # Money: what the emulator took equals what the SDK reports billed.
        billed = sum(
            s.activation.price
            for s in self.sessions
            if s.activation.billing_status == pf.BillingStatus.BILLED
        )
        # (An order whose outcome stayed unknown pays for itself if its SMS came.)
        balance = emulator.balance()
        orphans_billed = sum(placed[a]["price"] for a in orphans if _billed(placed[a]))
        assert billed == self.start_total - balance["total"] - orphans_billed
        reserved_orphans = sum(placed[a]["price"] for a in orphans if _reserved(placed[a]))
        assert reserved_orphans == balance["reserved"]
        return {
            "orders": len(placed),
            "unknown": len(self.unknown),
            # orders no caller accounts for, and numbers handed to two callers
            "double": max(0, len(orphans) - len(self.unknown))
            + len(self.handed_out)
            - len(set(self.handed_out)),
            "leaked": len(leaked),
            "lost": len(lost),
        }


#: The server's status each outcome stands for (ALREADY_ENDED: none that a soak allows).
_SHOWN = {
    pf.SessionOutcome.FINALIZED: "finalized",
    pf.SessionOutcome.CANCELED: "canceled",
    pf.SessionOutcome.LEFT_TO_EXPIRE: "active",
}


def _state(activation: dict[str, Any]) -> tuple[str, str]:
    return activation["activation_status"], activation["billing_status"]


def _billed(activation: dict[str, Any]) -> bool:
    return bool(activation["billing_status"] == "billed")


def _reserved(activation: dict[str, Any]) -> bool:
    return bool(activation["billing_status"] == "reserved")


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
