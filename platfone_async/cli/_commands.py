"""One handler per ``platfone`` subcommand (``order`` and ``wait`` are in ``_waiting``).

Each takes the :class:`~._app.Context` and returns its exit code; errors are mapped to
exit codes by the caller. Services and countries are named by id or by name
(``_resolve``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platfone_async import Report, Service, SessionOutcome, Settled

from . import _waiting
from ._output import dollars, local_time, phone_of, relative
from ._resolve import UsageError, resolve_country, resolve_service
from ._waiting import show_activation

if TYPE_CHECKING:
    from ._app import Context

__all__ = ["HANDLERS"]


# -- reading ----------------------------------------------------------------------------


async def balance(ctx: Context) -> int:
    result = await ctx.client.get_balance()
    if ctx.out.json:
        ctx.out.emit(result)
    else:
        ctx.out.line(
            f"Balance: {dollars(result.available)} available "
            f"({dollars(result.total)} total, {dollars(result.reserved)} reserved)"
        )
    return 0


async def countries(ctx: Context) -> int:
    query = ctx.args.query
    if query:
        items = [m.item for m in await ctx.client.find_country(query, limit=10)]
    else:
        items = await ctx.client.get_countries()
    if ctx.out.json:
        ctx.out.emit(items)
        return 0
    title = f"Countries matching {query!r}" if query else "Countries"
    rows = [(c.country_id, c.name, ", ".join(f"+{code}" for code in c.codes)) for c in items]
    ctx.out.table(title, ("id", "name", "codes"), rows)
    return 0


def _notes(service: Service) -> str:
    return ", ".join(
        name
        for name, flagged in (
            ("warning", service.has_warning),
            ("description", service.has_description),
        )
        if flagged
    )


def _services_table(ctx: Context, title: str, items: Sequence[Service]) -> None:
    shown = [s for s in items if not s.prohibited]
    rows = [(s.service_id, s.name, _notes(s)) for s in shown]
    ctx.out.table(title, ("id", "name", "notes"), rows)
    if any(s.has_warning or s.has_description for s in shown):
        ctx.out.note("platfone service ID: what the API says about one of them")


async def services(ctx: Context) -> int:
    query = ctx.args.query
    if query:
        items = [m.item for m in await ctx.client.find_service(query, limit=10)]
    else:
        items = [s for s in await ctx.client.get_services() if not s.prohibited]
    title = f"Services matching {query!r}" if query else "Services"
    if ctx.args.warnings:
        items = [s for s in items if s.has_warning]
        title += " with a warning"
    if ctx.out.json:
        ctx.out.emit(items)
        return 0
    _services_table(ctx, title, items)
    return 0


async def service(ctx: Context) -> int:
    """One service: its names and what the API flags about it."""
    found = await resolve_service(ctx, ctx.args.service)
    if ctx.out.json:
        ctx.out.emit(found)
        return 0
    ctx.out.line(f"{found.name} ({found.service_id})")
    if found.alt_name and found.alt_name != found.name:
        ctx.out.line(f"  also known as  {found.alt_name.replace('|', ', ')}")
    for label, flagged in (("warning", found.has_warning), ("description", found.has_description)):
        text = "yes (the API says there is one but does not send its text)" if flagged else "none"
        ctx.out.line(f"  {label:<13}  {text}")
    return 0


async def popular(ctx: Context) -> int:
    items = [s for s in await ctx.client.get_popular_services() if not s.prohibited]
    if ctx.out.json:
        ctx.out.emit(items)
    else:
        _services_table(ctx, "Popular services", items)
    return 0


async def price(ctx: Context) -> int:
    service = await resolve_service(ctx, ctx.args.service)
    country = await resolve_country(ctx, ctx.args.country)
    info = await ctx.client.get_price(service.service_id, country.country_id)
    if ctx.out.json:
        ctx.out.emit(info)
        return 0
    p = info.price
    ctx.out.line(
        f"{service.name} in {country.name}: {dollars(p.suggested)} suggested "
        f"({dollars(p.min)}-{dollars(p.max)}), quality {info.quality.avg:.2f}, "
        f"{info.count} in stock"
    )
    return 0


async def prices(ctx: Context) -> int:
    if ctx.args.service:
        service = await resolve_service(ctx, ctx.args.service)
        by_service = await ctx.client.get_prices_by_service(service.service_id)
        if ctx.out.json:
            ctx.out.emit(by_service)
            return 0
        rows = [
            (s.service_id, c.country_id, *_price_cells(c.price, c.quality.avg, c.count))
            for s in by_service
            for c in s.countries
        ]
        title = f"Prices of {service.name}"
    else:
        country_id = None
        title = "Prices"
        if ctx.args.country:
            country = await resolve_country(ctx, ctx.args.country)
            country_id, title = country.country_id, f"Prices in {country.name}"
        by_country = await ctx.client.get_prices_by_country(country_id)
        if ctx.out.json:
            ctx.out.emit(by_country)
            return 0
        rows = [
            (s.service_id, c.country_id, *_price_cells(s.price, s.quality.avg, s.count))
            for c in by_country
            for s in c.services
        ]
    ctx.out.table(
        title, ("service", "country", "min", "suggested", "max", "quality", "stock"), rows
    )
    return 0


async def offers(ctx: Context) -> int:
    service = await resolve_service(ctx, ctx.args.service)
    candidates = [(await resolve_country(ctx, c)).country_id for c in ctx.args.countries]
    ranked = await ctx.client.rank_offers(
        service.service_id,
        candidates or None,
        prefer=ctx.args.prefer,
        price_ceiling=ctx.args.price_ceiling,
    )
    shown = ranked[: ctx.args.limit] if ctx.args.limit else ranked
    if ctx.out.json:
        ctx.out.emit(shown)
        return 0
    ctx.out.table(
        f"Offers of {service.name} (prefer {ctx.args.prefer})",
        ("#", "country", "price", "quality", "stock", "score"),
        [
            (i, o.country_id, dollars(o.price), f"{o.quality:.2f}", o.count, f"{o.score:.3f}")
            for i, o in enumerate(shown, 1)
        ],
    )
    if shown:
        best = shown[0]
        ctx.out.note(f"next: platfone order {service.service_id} {best.country_id} --wait")
    return 0


def _price_cells(p: Any, quality: float, count: int) -> tuple[str, ...]:
    return (dollars(p.min), dollars(p.suggested), dollars(p.max), f"{quality:.2f}", str(count))


async def get(ctx: Context) -> int:
    show_activation(ctx, await ctx.client.get_activation(ctx.args.activation_id))
    return 0


async def _act_then_show(ctx: Context, act: Callable[[str], Awaitable[None]], done: str) -> int:
    await act(ctx.args.activation_id)
    state = await ctx.client.get_activation(ctx.args.activation_id)
    show_activation(ctx, state, done)
    return 0


async def retry(ctx: Context) -> int:
    return await _act_then_show(ctx, ctx.client.retry_activation, "Retry requested for")


async def cancel(ctx: Context) -> int:
    return await _act_then_show(ctx, ctx.client.cancel_activation, "Cancelled")


async def finalize(ctx: Context) -> int:
    return await _act_then_show(ctx, ctx.client.finalize_activation, "Finalized")


async def history(ctx: Context) -> int:
    if ctx.args.all:
        if ctx.out.json:  # JSON Lines, each activation as its page comes
            async for activation in ctx.client.iter_activation_history(limit=50):
                ctx.out.emit(activation)
            return 0
        items = [a async for a in ctx.client.iter_activation_history(limit=50)]
        title = f"All activations ({len(items)})"
    else:
        page = await ctx.client.get_activation_history(limit=ctx.args.limit)
        if ctx.out.json:
            ctx.out.emit(page)
            return 0
        items = page.items
        title = f"Activations, page {page.page} of {page.pages} ({page.total} in all)"
    rows = [
        (
            a.activation_id,
            phone_of(a),
            f"{a.service_id}/{a.country_id}",
            dollars(a.price),
            a.activation_status,
            a.sms_code or a.sms_status,
            local_time(a.created_at),
        )
        for a in items
    ]
    ctx.out.table(title, ("id", "number", "service", "price", "status", "sms", "created"), rows)
    return 0


async def reasons(ctx: Context) -> int:
    items = await ctx.client.get_report_reasons(ctx.args.activation_id)
    if ctx.out.json:
        ctx.out.emit(items)
        return 0
    rows = [(r.reason_id, r.reason_name, "yes" if r.evidence_required else "") for r in items]
    ctx.out.table("Report reasons", ("reason_id", "reason", "evidence needed"), rows)
    return 0


async def report(ctx: Context) -> int:
    evidence = Path(ctx.args.evidence) if ctx.args.evidence else None
    if evidence is not None and not evidence.is_file():
        raise UsageError(f"--evidence {ctx.args.evidence!r} is not a file")
    result = await ctx.client.create_report(
        ctx.args.activation_id, ctx.args.reason, message=ctx.args.message, evidence=evidence
    )
    if ctx.out.json:
        ctx.out.emit(result)
    elif result.decline_id is None:
        ctx.out.line(f"Report {result.status} for {ctx.args.activation_id}")
    else:
        ctx.out.line(f"Report {result.status} (decline_id {result.decline_id})")
    return 0


def _report_lines(ctx: Context, r: Report) -> None:
    status = r.activation.report_status
    ctx.out.line(f"Report on {r.activation.activation_id}: {status}")
    ctx.out.line(f"  reason   {r.reason_id} {r.reason_name}")
    if r.message:
        ctx.out.line(f"  message  {r.message!r}")
    ctx.out.line(f"  filed    {local_time(r.created_at)} ({relative(r.created_at, ctx.now())})")


async def report_status(ctx: Context) -> int:
    result = await ctx.client.get_report(ctx.args.activation_id)
    if ctx.out.json:
        ctx.out.emit(result)
    else:
        _report_lines(ctx, result)
    return 0


async def reports(ctx: Context) -> int:
    if ctx.args.all:
        if ctx.out.json:  # JSON Lines, each report as its page comes
            async for filed in ctx.client.iter_reports():
                ctx.out.emit(filed)
            return 0
        items = [r async for r in ctx.client.iter_reports()]
    else:
        page = await ctx.client.get_reports()
        if ctx.out.json:
            ctx.out.emit(page)
            return 0
        items = page.items
    rows = [
        (
            r.activation.activation_id,
            r.activation.report_status,
            r.reason_name,
            local_time(r.created_at),
        )
        for r in items
    ]
    ctx.out.table("Reports", ("activation", "status", "reason", "filed"), rows)
    return 0


async def limits(ctx: Context) -> int:
    state = await ctx.client.rate_limit_state()
    if ctx.out.json:
        document = {
            "base_url": state.base_url,  # the key itself is never shown
            "limiters": state.limiters,
            "slots": state.slots,
            "success_rate": state.success_rate,
            "account_blocked_for": state.account_blocked_for,
        }
        ctx.out.emit(document)
        return 0
    rows = [
        (name, f"{s.calls}/{s.period:g}s", s.available, s.in_use, s.waiters, f"{s.blocked_for:g}")
        for name, s in sorted(state.limiters.items())
    ]
    ctx.out.table(
        f"Client-side limits for {state.base_url} (this process)",
        ("endpoint", "limit", "available", "in use", "waiting", "blocked s"),
        rows,
    )
    slots, rate = state.slots, state.success_rate
    ctx.out.line(f"Active activations: {slots.in_use} of {slots.effective_capacity} slots in use")
    shown = "n/a" if rate.rate is None else f"{rate.rate:.0%}"
    ctx.out.line(f"Success rate: {shown} ({rate.successes} of {rate.orders} orders got an SMS)")
    return 0


async def open_numbers(ctx: Context) -> int:
    """The journal: every number opened through the SDK on this key and not settled."""
    found = await ctx.client.open_activations()
    if ctx.out.json:
        ctx.out.emit(found)
        return 0
    rows = [
        (
            o.activation.activation_id,
            phone_of(o.activation),
            f"{o.activation.service_id}/{o.activation.country_id}",
            dollars(o.activation.price),
            o.activation.sms_code or o.activation.sms_status,
            local_time(o.activation.expire_at),
            "this run" if o.mine else ("a live run" if o.alive else "left (its run ended)"),
        )
        for o in found
    ]
    ctx.out.table(
        f"Open numbers ({len(found)})",
        ("id", "number", "service", "price", "sms", "expires", "held by"),
        rows,
    )
    if any(o.lapsed for o in found):
        ctx.out.note("platfone recover settles the numbers left by a run that ended")
    return 0


def _recovered_line(settled: Settled) -> str:
    a, outcome = settled.activation, settled.outcome
    number = f"{phone_of(a)} ({a.activation_id}, {a.service_id}/{a.country_id})"
    if outcome is SessionOutcome.FINALIZED:
        return f"finalized {number}"
    if outcome is SessionOutcome.CANCELED:
        return f"cancelled {number}: no SMS came; its reserved price is released"
    if outcome is SessionOutcome.LEFT_TO_EXPIRE:
        return f"left {number} to expire at {local_time(a.expire_at)}"
    return f"{number} had already ended ({a.activation_status})"


async def recover(ctx: Context) -> int:
    """Take over and settle what a run that ended left open, printing each code."""
    settled = await ctx.client.recover(interval=ctx.interval())
    if ctx.out.json:
        ctx.out.emit(settled)
        return 0
    if not settled:
        ctx.out.line("Nothing to recover: no number was left open by a run that ended.")
        return 0
    for one in settled:
        ctx.out.line(_recovered_line(one))
        code = one.activation.sms_code or one.activation.sms_text
        if code:
            ctx.out.line(f"  Code: {code}", "code")
    cancelled = sum(1 for one in settled if one.outcome is SessionOutcome.CANCELED)
    ctx.out.line(
        f"Recovered {len(settled)}: {cancelled} cancelled without an SMS (they count "
        "against the 24 h success rate, as they would have anyway)"
    )
    return 0


HANDLERS: dict[str, Callable[[Context], Awaitable[int]]] = {
    "balance": balance,
    "countries": countries,
    "services": services,
    "service": service,
    "popular": popular,
    "price": price,
    "prices": prices,
    "offers": offers,
    "order": _waiting.order,
    "get": get,
    "wait": _waiting.wait,
    "retry": retry,
    "cancel": cancel,
    "finalize": finalize,
    "history": history,
    "reasons": reasons,
    "report": report,
    "report-status": report_status,
    "reports": reports,
    "limits": limits,
    "open": open_numbers,
    "recover": recover,
}
