"""Fixtures of the fleet tests: a real Redis server and a fresh key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._servers import redis_url as _redis_url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a real redis-server: CI's (``PLATFONE_TEST_REDIS_URL``) or one started here."""
    with _redis_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fleet test's workers share their state: one SQLite file (the processes
    of one host), or the real redis-server (keys under the test's prefix)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'fleet.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses, so tests share the server but no keys."""
    return f"test-{uuid.uuid4().hex[:12]}"
