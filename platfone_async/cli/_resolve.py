"""Services and countries named by id or by name, through ``find_service`` /
``find_country``: a name must name exactly one; otherwise the closest are suggested."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from platfone_async import CatalogMatch, Country, Service

if TYPE_CHECKING:
    from ._app import Context

__all__ = ["UsageError", "resolve_country", "resolve_service"]


class UsageError(Exception):
    """The command cannot run as asked (exit 2): e.g. a name that names nothing."""


def _label(match: CatalogMatch[Any]) -> str:
    item = match.item
    ident = item.service_id if isinstance(item, Service) else item.country_id
    return f"{ident} ({item.name})"


def _not_found(kind: str, query: str, matches: Sequence[CatalogMatch[Any]]) -> UsageError:
    listing = "platfone countries" if kind == "country" else "platfone services"
    if not matches:
        return UsageError(f"no {kind} matches {query!r} (see: {listing})")
    names = ", ".join(_label(m) for m in matches)
    if all(m.exact for m in matches):
        return UsageError(f"{query!r} may be any of these {kind} ids - pick one: {names}")
    return UsageError(f"unknown {kind} {query!r}; did you mean: {names}?")


async def resolve_service(ctx: Context, query: str) -> Service:
    """The one service ``query`` names, or :class:`UsageError` with the closest ones."""
    matches = await ctx.client.find_service(query)
    if len(matches) == 1 and matches[0].exact:
        return matches[0].item
    raise _not_found("service", query, matches)


async def resolve_country(ctx: Context, query: str) -> Country:
    """The one country ``query`` names, or :class:`UsageError` with the closest ones."""
    matches = await ctx.client.find_country(query)
    if len(matches) == 1 and matches[0].exact:
        return matches[0].item
    raise _not_found("country", query, matches)
