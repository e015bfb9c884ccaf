"""The account: its balance.

No ``from __future__ import annotations`` (see ``_models``).
"""

import attrs

from ._base import ApiModel

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
