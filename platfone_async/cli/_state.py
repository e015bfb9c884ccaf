"""Where the command keeps its state: the journal of the numbers it opened, and the limits.

By default one SQLite file per API key in the user's state directory:
``$XDG_STATE_HOME/platfone-async/<digest>.sqlite3`` (``~/.local/state`` when the variable
is unset), named by a digest of the key - never the key. So a run killed while it held a
number (``order --wait``) leaves it journaled, and ``platfone recover`` settles it.
``--state URL`` (or ``PLATFONE_STATE_URL``) names another store: ``sqlite:///path`` or
``redis://...``; ``?lease=S`` sets how long after a run died its numbers count as left
(30 s).
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from ._resolve import UsageError

if TYPE_CHECKING:
    from platfone_async import RedisBackend, SQLiteBackend

__all__ = ["default_state_file", "state_backend"]


def default_state_file(api_key: str) -> Path:
    """The state file of ``api_key`` in the user's state directory (not created)."""
    root = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    return Path(root) / "platfone-async" / f"{digest}.sqlite3"


def state_backend(url: str | None, api_key: str | None) -> SQLiteBackend | RedisBackend | None:
    """The store ``url`` names (``--state`` or ``$PLATFONE_STATE_URL``), else the key's
    default file; None when there is no key (the client then says so) or the state
    directory cannot be made (nothing is journaled then)."""
    from platfone_async import RedisBackend, SQLiteBackend

    url = url or os.environ.get("PLATFONE_STATE_URL") or os.environ.get("PLATFONE_REDIS_URL")
    if not url:
        if not api_key:
            return None
        path = default_state_file(api_key)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None
        return SQLiteBackend(path)
    scheme, _, rest = url.partition("://")
    base, _, query = rest.partition("?")
    options = urllib.parse.parse_qs(query)
    try:
        lease = float(options.pop("lease", ["30"])[-1])
    except ValueError:
        raise UsageError(f"--state {url!r}: lease must be a number of seconds") from None
    if scheme == "sqlite" and base and not options:
        return SQLiteBackend(base, lease=lease)
    if scheme in ("redis", "rediss", "unix"):
        rest = urllib.parse.urlencode(options, doseq=True)  # redis-py's own options
        return RedisBackend.from_url(
            f"{scheme}://{base}" + (f"?{rest}" if rest else ""), lease=lease
        )
    raise UsageError(f"--state {url!r}: give sqlite:///path or redis://host:port/db")
