"""The fleet tests' real servers: a redis-server, a fresh key prefix, and ``state_url``
(each process test runs over one SQLite file and over Redis)."""

from __future__ import annotations

from ..fleet.conftest import prefix, redis_url, state_url

__all__ = ["prefix", "redis_url", "state_url"]
