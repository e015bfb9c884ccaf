"""Finding a service or a country by what a person types: an id, a name, an alt name.

``AsyncPlatfone.find_service`` / ``find_country`` rank the (ETag-cached) catalog against
a query with :func:`rank`. Comparison ignores case, accents and punctuation
(``"cote d'ivoire"`` finds ``Côte d'Ivoire``, ``"7 eleven"`` finds ``7-Eleven``), and a
part of a name counts as a name of its own (``"Gmail"`` finds
``Google / Gmail / YouTube``, ``"Twitter"`` finds ``X (Twitter)``).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from typing import Generic, TypeVar

import attrs

from ._models import publish
from ._models._catalog import Country, Service

__all__ = ["CatalogMatch", "normalize", "rank"]

T = TypeVar("T", Service, Country)

#: A look-alike spelling scores at least this (difflib's ratio) to be suggested at all.
MIN_SIMILARITY = 0.6
#: Scores by how the query matched, best first.
ID_OR_NAME, PART_OF_NAME, PREFIX, INSIDE = 1.0, 0.95, 0.9, 0.8
_PARTS = re.compile(r"[/(),;]")


@attrs.frozen
class CatalogMatch(Generic[T]):
    """One catalog entry a query may mean, and how well it matches.

    ``item`` is the :class:`Service` or :class:`Country`. ``exact`` is true when the
    query *is* its id, name or alt_name, or a part of its name (ignoring case, accents
    and punctuation). ``score`` is 1.0 for an id or a whole name, 0.95 for a part of a
    name, 0.9 for a name that starts with the query, 0.8 for one that contains it, and
    below that for a look-alike spelling.
    """

    item: T
    exact: bool
    score: float


publish(CatalogMatch)  # loaded on first use: label it here


def normalize(text: str) -> str:
    """``text`` without accents, case, spaces or punctuation: ``"Côte d'Ivoire"`` ->
    ``"cotedivoire"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return "".join(char for char in plain.casefold() if char.isalnum())


def _names(item: Service | Country) -> tuple[set[str], set[str]]:
    """(whole names: id, name, alt_name; parts of the names), normalized."""
    ident = item.service_id if isinstance(item, Service) else item.country_id
    whole = [ident, item.name, item.alt_name or ""]
    parts = [part for name in whole[1:] for part in _PARTS.split(name)]
    return {n for n in map(normalize, whole) if n}, {n for n in map(normalize, parts) if n}


def _score(key: str, item: T) -> CatalogMatch[T] | None:
    whole, parts = _names(item)
    if key in whole:
        return CatalogMatch(item, exact=True, score=ID_OR_NAME)
    if key in parts:
        return CatalogMatch(item, exact=True, score=PART_OF_NAME)
    names = whole | parts
    if any(name.startswith(key) for name in names):
        return CatalogMatch(item, exact=False, score=PREFIX)
    if any(key in name for name in names):
        return CatalogMatch(item, exact=False, score=INSIDE)
    similarity = max(difflib.SequenceMatcher(None, key, name).ratio() for name in names)
    if similarity < MIN_SIMILARITY:
        return None
    return CatalogMatch(item, exact=False, score=round(INSIDE * similarity, 3))


def rank(items: Iterable[T], query: str, *, limit: int = 5) -> list[CatalogMatch[T]]:
    """The entries ``query`` may mean, best first.

    When the query is an id or a (part of a) name, only the entries it names that way
    are returned - one, unless the catalog repeats a name (then the query is
    ambiguous), and whole names before parts. Otherwise the closest entries (names that
    start with it, contain it, or look like it), at most ``limit`` of them; none when
    nothing is close.
    """
    key = normalize(query)
    if not key:
        return []
    matches: list[CatalogMatch[T]] = []
    for item in items:
        match = _score(key, item)
        if match is not None:
            matches.append(match)
    matches.sort(key=lambda m: (-m.score, m.item.name))
    if matches and matches[0].exact:
        top = matches[0].score
        return [m for m in matches if m.exact and m.score == top]
    return matches[:limit]
