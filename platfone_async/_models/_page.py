"""One page of a paginated list: the activation history, the reports.

Loaded on first use (see ``_models``); no ``from __future__ import annotations``, for
the same reason as there.
"""

from typing import Generic, TypeVar

import attrs

from . import ApiModel, publish

__all__ = ["Page"]

T = TypeVar("T")


@attrs.frozen
class Page(ApiModel, Generic[T]):
    """One page of a paginated list."""

    items: list[T]
    page: int
    limit: int
    pages: int
    total: int


publish(Page)
