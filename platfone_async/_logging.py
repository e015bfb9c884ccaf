"""``PLATFONE_LOG=debug|info``: the SDK's own logging to stderr, without code.

The way ``OPENAI_LOG`` does it for the OpenAI SDK: set the variable and the
``platfone_async`` logger gets a stderr handler at that level when the package is
imported. Its records never hold the API key (docs/guides/client.md, "Logging").
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["configure_from_environment"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}


class _EnvironmentHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``PLATFONE_LOG`` installs (so that it is installed once)."""


def configure_from_environment() -> None:
    """Honour ``PLATFONE_LOG`` (``debug`` or ``info``; anything else is ignored)."""
    level = _LEVELS.get(os.environ.get("PLATFONE_LOG", "").strip().lower())
    if level is None:
        return
    logger = logging.getLogger("platfone_async")
    if not any(isinstance(h, _EnvironmentHandler) for h in logger.handlers):
        handler = _EnvironmentHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
