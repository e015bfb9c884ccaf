"""The account: its balance.

Loaded on first use (see ``_models``); no ``from __future__ import annotations``, for
the same reason as there.
"""

import attrs

from . import ApiModel, publish

__all__ = ["Balance"]


@attrs.frozen
class Balance(ApiModel):
    """The account balance in USD cents."""

    total: int
    reserved: int

    @property
    def available(self) -> int:
        """What can still be spent: ``total - reserved``."""
        return self.total - self.reserved


publish(Balance)
