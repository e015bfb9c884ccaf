"""One page of a paginated list: the activation history, the reports.

No ``from __future__ import annotations`` (see ``_models``).
"""

from typing import Generic, TypeVar

import attrs

from ._base import ApiModel

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
