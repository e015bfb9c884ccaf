"""Watching and holding activations (being written: see issue 5)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

from ._models import Activation

if TYPE_CHECKING:
    from ._client import AsyncPlatfone

__all__ = ["ActivationSession", "open_session", "wait_for_sms", "watch"]


class ActivationSession:
    """The handle ``AsyncPlatfone.activation()`` yields."""


async def watch(
    client: AsyncPlatfone, activation: str | Activation, *, interval: float
) -> AsyncGenerator[Activation, None]:
    raise NotImplementedError
    yield  # pragma: no cover


async def wait_for_sms(
    client: AsyncPlatfone,
    activation: str | Activation,
    *,
    timeout: float | None,
    interval: float,
) -> Activation:
    raise NotImplementedError


@contextlib.asynccontextmanager
async def open_session(
    client: AsyncPlatfone,
    service_id: str,
    country_id: str,
    *,
    max_price: int | None,
    price_ceiling: int | None,
    quality_factor: float | None,
    wait_for_slot: bool,
) -> AsyncIterator[ActivationSession]:
    raise NotImplementedError
    yield  # pragma: no cover
