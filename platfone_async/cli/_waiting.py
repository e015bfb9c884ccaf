"""``platfone order ... --wait`` and ``platfone wait ID``: a wait that is shown.

On a terminal the SDK's text display (``wait_for_sms(progress=stream)``) rewrites one
line on stderr every second - the number, its status, the time left until
``expire_at`` - and the code then goes to stdout; on a pipe it prints a line per change.
With ``--json`` each state change is one JSON line on stdout.

``order --wait`` holds the number in an ``activation()`` session: whatever ends the
wait - the SMS, ``--timeout``, Ctrl-C - the number is finalized, cancelled when it can
be, or left to expire, and the command says which. On Ctrl-C the session itself says
what it is doing (and a second Ctrl-C leaves the number at once, saying what it leaves).
While the session waits to cancel it keeps watching: a code that comes after
``--timeout`` or the first Ctrl-C is printed as an in-time one (stdout, ``--json``
too), with a note on stderr; after ``--timeout`` the command then exits 0.

``wait ID`` leaves the number as it is; stopping without the SMS, it reads it once more,
prints a code that came meanwhile the same way, and says what the server shows of it.
Ctrl-C is what ``ctx.interrupts`` counts, not the type of the exception that surfaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from platfone_async import (
    Activation,
    ActivationEndedError,
    ActivationSession,
    BillingStatus,
    MaxPriceExceededError,
    NoNumbersAvailableError,
    PlatfoneError,
    SessionOutcome,
    WaitTimeoutError,
)

from ._output import dollars, local_time, phone_of, relative
from ._resolve import UsageError, resolve_country, resolve_service

if TYPE_CHECKING:
    from ._app import Context

__all__ = ["order", "show_activation", "wait"]

#: Orders that follow a 409's suggested price within --price-ceiling (as the session).
MAX_REORDERS = 3


def show_activation(ctx: Context, activation: Activation, headline: str = "Activation") -> None:
    """An activation as lines (human) or one JSON document."""
    if ctx.out.json:
        ctx.out.emit(activation)
        return
    a, now = activation, ctx.now()
    lines = [
        (
            f"{headline} {a.activation_id}: {phone_of(a)} "
            f"for {a.service_id} in {a.country_id}, {dollars(a.price)}"
        ),
        f"  status   {a.activation_status}, sms {a.sms_status}, billing {a.billing_status}",
    ]
    if a.sms_code or a.sms_text:
        lines.append(f"  code     {a.sms_code or '-'}  {a.sms_text or ''!r}")
    lines.append(f"  expires  {local_time(a.expire_at)} ({relative(a.expire_at, now)})")
    lines.append(f"  created  {local_time(a.created_at)} ({relative(a.created_at, now)})")
    if a.cancelable_after is not None:
        when = a.cancelable_after
        lines.append(f"  cancelable after {local_time(when)} ({relative(when, now)})")
    if a.report_status:
        lines.append(f"  report   {a.report_status}")
    for line in lines:
        ctx.out.line(line)


class _States:
    """The states a wait shows: JSON Lines (each change once) or the text display."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.last: Activation | None = None
        self.shown_code: str | None = None

    def emit(self, state: Activation) -> None:
        if state != self.last:
            self.last = state
            if self._ctx.out.json:
                self._ctx.out.emit(state)

    def progress(self) -> Any:
        """What ``wait_for_sms(progress=...)`` gets."""
        return self.emit if self._ctx.out.json else self._ctx.out.stderr

    def code(self, state: Activation) -> None:
        self.shown_code = state.sms_code
        self.emit(state)
        if not self._ctx.out.json:
            text = f"  {state.sms_text!r}" if state.sms_text else ""
            self._ctx.out.line(f"Code: {state.sms_code}{text}", "code")


def _check_prices(args: Any) -> None:
    ceiling = args.price_ceiling
    if args.max_price is not None and ceiling is not None and args.max_price > ceiling:
        raise UsageError(
            f"--max-price {args.max_price} is above --price-ceiling {args.price_ceiling}"
        )


async def order(ctx: Context) -> int:
    args = ctx.args
    _check_prices(args)
    if args.wait_timeout is not None and not args.wait:
        raise UsageError("--timeout goes with --wait")
    service = await resolve_service(ctx, args.service)
    countries = await _countries(ctx, args.country)
    if args.wait:
        return await _order_and_wait(ctx, service.service_id, countries)
    if isinstance(countries, str):
        activation = await _place(ctx, service.service_id, countries)
    else:
        best = await _place_best(ctx, service.service_id, countries)
        if best is None:
            return 1  # (an API error's exit code: nothing to buy)
        activation = best
    show_activation(ctx, activation, "Ordered")
    if not ctx.out.json:
        _next_steps(ctx, activation)
    return 0


async def _countries(ctx: Context, spec: str) -> str | list[str] | None:
    """COUNTRY as the SDK takes it: one id, the candidates' ids (``uk,de``), or None
    (``any``: every country that sells the service)."""
    if spec.strip().lower() == "any":
        return None
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise UsageError(f"COUNTRY {spec!r} names no country")
    ids = [(await resolve_country(ctx, name)).country_id for name in names]
    return ids[0] if len(ids) == 1 else ids


async def _place_best(
    ctx: Context, service_id: str, candidates: list[str] | None
) -> Activation | None:
    """The best offer among ``candidates`` (None: all), the next when one has no number or
    a price above --price-ceiling, as ``client.activation`` shops (for a number kept);
    None, said on stderr, when the price list offers none."""
    args = ctx.args
    offers = await ctx.client.rank_offers(
        service_id, candidates, prefer=args.prefer, price_ceiling=args.price_ceiling
    )
    if not offers:
        within = "" if args.price_ceiling is None else f" within {dollars(args.price_ceiling)}"
        ctx.out.note(
            f"platfone order: no offer of {service_id} in stock{within}; nothing was "
            "ordered (see: platfone offers)",
            "error",
        )
        return None
    for offer in offers[:-1]:
        try:
            return await _place(ctx, service_id, offer.country_id)
        except (NoNumbersAvailableError, MaxPriceExceededError) as error:
            ctx.out.note(f"{offer.country_id}: {error.message}; trying the next offer")
    return await _place(ctx, service_id, offers[-1].country_id)


def _next_steps(ctx: Context, activation: Activation) -> None:
    """What to run next for a number ordered without ``--wait``."""
    aid = activation.activation_id
    ctx.out.note(f"next: platfone wait {aid}  (then: platfone finalize {aid})")
    ctx.out.note(
        f"      no SMS? platfone cancel {aid} (from {local_time(activation.cancelable_after)})"
        if activation.cancelable_after is not None
        else f"      no SMS? platfone cancel {aid}"
    )


async def _place(ctx: Context, service_id: str, country_id: str) -> Activation:
    """One order; within --price-ceiling, continued at a 409's suggested price."""
    args = ctx.args
    price = args.max_price if args.max_price is not None else args.price_ceiling
    order_id: str | None = None
    for reorder in range(MAX_REORDERS + 1):
        try:
            return await ctx.client.create_activation(
                service_id,
                country_id,
                max_price=price,
                order_id=order_id,
                quality_factor=args.quality,
            )
        except MaxPriceExceededError as error:
            suggested = error.suggested_price
            ceiling = args.price_ceiling
            if ceiling is None or suggested is None or suggested > ceiling:
                raise
            if reorder == MAX_REORDERS:
                raise
            ctx.out.note(f"no number at {dollars(price)}; ordering at {dollars(suggested)}")
            price, order_id = suggested, error.order_id or order_id
    raise AssertionError("unreachable")  # pragma: no cover


def _outcome_note(session: ActivationSession) -> str:
    a = session.activation
    phone = phone_of(a)
    if session.outcome is SessionOutcome.FINALIZED:
        return f"finalized {phone} (the price was billed when the SMS came)"
    if session.outcome is SessionOutcome.CANCELED:
        return f"cancelled {phone}; its reserved price is released"
    if session.outcome is SessionOutcome.LEFT_TO_EXPIRE:
        if a.billing_status == BillingStatus.BILLED:
            code = a.sms_code or a.sms_text
            return (
                f"left {phone} unfinalized until {local_time(a.expire_at)}; its SMS came and"
                f" was billed (code {code})"
            )
        return f"left {phone} to expire at {local_time(a.expire_at)}"
    return f"{phone} had already ended ({a.activation_status})"


async def _order_and_wait(ctx: Context, service_id: str, country_id: str | list[str] | None) -> int:
    args = ctx.args
    states = _States(ctx)
    held: ActivationSession | None = None
    try:
        async with ctx.client.activation(
            service_id,
            country_id,
            prefer=args.prefer,
            max_price=args.max_price,
            price_ceiling=args.price_ceiling,
            quality_factor=args.quality,
        ) as session:
            held = session
            states.emit(session.activation)
            if not ctx.out.json:
                show_activation(ctx, session.activation, "Ordered")
            state = await session.wait_for_sms(
                timeout=args.wait_timeout, interval=ctx.interval(), progress=states.progress()
            )
            states.code(state)
    except Exception as error:
        if held is None:
            raise
        # Ctrl-C is counted as pressed, not read from what surfaces: the call it tore
        # down may end with any exception.
        interrupted = ctx.interrupts.happened
        after = "the interruption" if interrupted else _cause(error)
        late = _late_code(ctx, states, held, after)
        _settled(ctx, states, held)
        if late and not interrupted:
            return 0  # the code the command was for reached its caller
        raise
    except BaseException:
        # Interrupted: the session has said what it did (or is doing) on stderr.
        if held is not None:
            _late_code(ctx, states, held, "the interruption")
            if held.outcome is not None:
                states.emit(held.activation)
        raise
    _settled(ctx, states, session)
    return 0


def _cause(error: BaseException) -> str:
    return "the --timeout" if isinstance(error, WaitTimeoutError) else "an error"


def _late_code(
    ctx: Context, states: _States, held: ActivationSession | Activation, after: str
) -> bool:
    """Print a code the wait did not (settling or a last read found it) as an in-time
    one; True if so."""
    state = held.activation if isinstance(held, ActivationSession) else held
    if not state.sms_code or states.shown_code == state.sms_code:
        return False
    states.code(state)
    billed = state.billing_status == BillingStatus.BILLED
    money = "billed for it" if billed else f"billing {state.billing_status}"
    ctx.out.note(f"the code came after {after}; {phone_of(state)}: {money}")
    return True


def _settled(ctx: Context, states: _States, session: ActivationSession) -> None:
    states.emit(session.activation)
    if session.outcome is not None:
        ctx.out.note(_outcome_note(session))


async def wait(ctx: Context) -> int:
    """Wait for the SMS of an activation this command did not open: it is left as it is.

    However the wait ends - the SMS, ``--timeout``, the number ending, Ctrl-C - it says
    what the server shows of the number. When it stops without the SMS, one last read
    looks for a code that came meanwhile (between two polls, or while Ctrl-C was
    pressed): printed as an in-time code, with a note that it came late; exit 0 after
    ``--timeout`` then (130 after Ctrl-C).
    """
    args = ctx.args
    states = _States(ctx)
    activation = await ctx.client.get_activation(args.activation_id)
    try:
        state = await ctx.client.wait_for_sms(
            activation,
            timeout=args.wait_timeout,
            interval=ctx.interval(),
            progress=states.progress(),
        )
    except BaseException as error:
        # (counted, not inferred: an interrupted call may end with any exception)
        interrupted = ctx.interrupts.happened or not isinstance(error, Exception)
        if not interrupted and not isinstance(error, (WaitTimeoutError, ActivationEndedError)):
            raise  # an API error, said as any command says it
        known = getattr(error, "activation", None) or states.last or activation
        last = await _last_read(ctx, known, interrupted)
        after = "the interruption" if interrupted else _cause(error)
        late = _late_code(ctx, states, last, after)
        states.emit(last)
        ctx.out.note(("stopped waiting; " if interrupted else "") + _standing(ctx, last))
        if late and not interrupted:
            return 0  # the code the command was for reached its caller
        raise
    states.code(state)
    return 0


#: How long the last read after Ctrl-C may take (a second Ctrl-C cuts it short).
LAST_READ_AFTER_CTRL_C = 5.0


async def _last_read(ctx: Context, known: Activation, interrupted: bool) -> Activation:
    """The activation as the server shows it now; ``known`` if it cannot be read (after
    Ctrl-C: within a few seconds, shielded from the first Ctrl-C's cancellation)."""
    try:
        if not interrupted:
            return await ctx.client.get_activation(known.activation_id)
        with anyio.move_on_after(LAST_READ_AFTER_CTRL_C, shield=True):
            return await ctx.client.get_activation(known.activation_id)
    except PlatfoneError as error:
        ctx.out.note(f"could not read {phone_of(known)} once more: {error}")
    return known


def _standing(ctx: Context, state: Activation) -> str:
    """What the server shows of a number left as it is, money first."""
    aid, phone = state.activation_id, phone_of(state)
    billed = state.billing_status == BillingStatus.BILLED
    if not state.is_active:
        money = "billed" if billed else f"billing {state.billing_status}"
        return f"{phone} is {state.activation_status} ({money})"
    until = f"{phone} is still active until {local_time(state.expire_at)}"
    if billed:
        code = state.sms_code or state.sms_text
        return f"{until}; its SMS came and was billed (code {code}) - platfone finalize {aid}"
    if state.billing_status != BillingStatus.RESERVED:
        return f"{until} (billing {state.billing_status})"
    when = state.cancelable_after
    allowed = (
        f" from {local_time(when)}" if when is not None and when.timestamp() > ctx.now() else ""
    )
    return (
        f"{until}; its price stays reserved until then - platfone cancel {aid} releases it{allowed}"
    )
