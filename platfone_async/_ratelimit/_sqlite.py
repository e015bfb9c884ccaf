"""The SQLite backend: one key's state shared by the processes of one host, in one file.

``AsyncPlatfone(..., limits_backend=SQLiteBackend("/var/lib/app/platfone.db"))`` (or
``PLATFONE_STATE_URL=sqlite:///var/lib/app/platfone.db``) keeps in that file what the
memory store keeps in a process: the windows, the slots, the blocks, the success counts,
the handed-out ids and the orders in flight. Each operation is one short ``BEGIN
IMMEDIATE`` transaction (the file's write lock, so each is atomic across processes) run
in a worker thread, off the event loop; the database is in WAL mode and a locked file is
waited for (``busy_timeout``). Times are the host's clock, which every process shares.

Waiters of one process queue in the generic :class:`~._wait.Gate`; only the head asks
the file, sleeping as long as the answer says (at most ``max_sleep``: another process's
change wakes no one here). Free tokens go to whoever asks first. The file outlives a
restart of every process: a restart of the host loses nothing (a token in flight of a
killed process comes back after ``max_request_time``).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import anyio
import anyio.to_thread

from .._clock import Clock
from .._errors import RateLimitBackendError
from ._lease import Heartbeat
from ._memory import MemoryStore, blocked_error, default_margin, spend_room_in
from ._state import LimiterState, SlotsState
from ._store import (
    FLIGHT_KEEP,
    JOURNAL_KEEP,
    SPEND_KEPT,
    Flight,
    JournalEntry,
    RateLimit,
    SpendTake,
    StoreSnapshot,
    Take,
)
from ._wait import logger, serving_held_number

__all__ = ["SQLiteBackend", "SQLiteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    scope TEXT NOT NULL, name TEXT NOT NULL, token TEXT NOT NULL, until REAL NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (scope, name, token));
CREATE TABLE IF NOT EXISTS blocks (
    scope TEXT NOT NULL, name TEXT NOT NULL, until REAL NOT NULL, PRIMARY KEY (scope, name));
CREATE TABLE IF NOT EXISTS slots (
    scope TEXT NOT NULL, member TEXT NOT NULL, expire REAL NOT NULL, bound INTEGER NOT NULL,
    PRIMARY KEY (scope, member));
CREATE TABLE IF NOT EXISTS external (
    scope TEXT PRIMARY KEY, count INTEGER NOT NULL, probe_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS account (
    scope TEXT PRIMARY KEY, until REAL NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    scope TEXT NOT NULL, activation_id TEXT NOT NULL, at REAL NOT NULL, sms INTEGER NOT NULL,
    PRIMARY KEY (scope, activation_id));
CREATE TABLE IF NOT EXISTS known (
    scope TEXT NOT NULL, activation_id TEXT NOT NULL, at REAL NOT NULL, owner TEXT NOT NULL,
    PRIMARY KEY (scope, activation_id));
CREATE TABLE IF NOT EXISTS owners (
    scope TEXT NOT NULL, owner TEXT NOT NULL, until REAL NOT NULL, PRIMARY KEY (scope, owner));
CREATE TABLE IF NOT EXISTS flights (
    scope TEXT NOT NULL, flight TEXT NOT NULL, owner TEXT NOT NULL, offer TEXT NOT NULL,
    until REAL NOT NULL, at REAL NOT NULL DEFAULT 0, slot TEXT, PRIMARY KEY (scope, flight));
CREATE TABLE IF NOT EXISTS journal (
    scope TEXT NOT NULL, activation_id TEXT NOT NULL, owner TEXT NOT NULL, record TEXT NOT NULL,
    expire REAL NOT NULL, PRIMARY KEY (scope, activation_id));
CREATE TABLE IF NOT EXISTS spend (
    scope TEXT NOT NULL, name TEXT NOT NULL, at REAL NOT NULL, cents INTEGER NOT NULL,
    PRIMARY KEY (scope, name));
"""


class SQLiteBackend:
    """State shared through one SQLite file by the processes of one host.

    Pass it as ``limits_backend=``. Two backends on the same file are equal (clients
    that each build their own still share one key's state in the process).

    Args:
        path: The database file (created with its tables when missing).
        busy_timeout: Seconds to wait for another process's transaction before
            :class:`RateLimitBackendError`.
        max_request_time: The longest a request holds a token of its endpoint: the token
            of a process that died mid-request comes back after this (plus the period).
        max_sleep: The longest a waiter sleeps before asking the file again.
        slot_grace: Seconds a slot stays taken after its activation's ``expire_at``.
        lease: Seconds an owner's orders in flight and claims count after its last
            heartbeat (sent every ``lease / 6`` s): a dead process blocks no other's
            reconciliation for longer.
    """

    __slots__ = (
        "_connections",
        "_ready",
        "_ready_lock",
        "busy_timeout",
        "lease",
        "max_request_time",
        "max_sleep",
        "path",
        "slot_grace",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        max_request_time: float = 300.0,
        max_sleep: float = 1.0,
        slot_grace: float = 5.0,
        lease: float = 30.0,
    ) -> None:
        self.lease = float(lease)
        self.path = os.path.abspath(os.fspath(path))
        self.busy_timeout = float(busy_timeout)
        self.max_request_time = float(max_request_time)
        self.max_sleep = float(max_sleep)
        self.slot_grace = float(slot_grace)
        self._connections = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.path!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not SQLiteBackend:
            return NotImplemented
        return self.path == other.path

    def __hash__(self) -> int:
        return hash((SQLiteBackend, self.path))

    def open_store(self, scope: str, clock: Clock) -> SQLiteStore:
        return SQLiteStore(self, scope, clock)

    async def aclose(self) -> None:
        """Nothing to do: each worker thread's connection closes with the thread."""
        return

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._connections, "db", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            with self._ready_lock:
                if not self._ready:
                    self._set_up(connection)
                    self._ready = True
            connection.execute("PRAGMA synchronous = NORMAL")
            self._connections.db = connection
        return connection

    def _set_up(self, connection: sqlite3.Connection) -> None:
        """WAL mode and the tables. Switching to WAL while another process does so fails
        at once ("database is locked", without the busy timeout): tried again until the
        busy timeout ends."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(_SCHEMA)
                _add_column(connection, "flights", "at REAL NOT NULL DEFAULT 0")
                _add_column(connection, "flights", "slot TEXT")
                return
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def transact(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction (in the calling thread)."""
        try:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise RateLimitBackendError(
                f"the SQLite limits backend failed ({type(exc).__name__}: {exc}); "
                "no request was sent"
            ) from exc

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`transact` in a worker thread, off the event loop."""
        return await anyio.to_thread.run_sync(self.transact, work)


def _add_column(connection: sqlite3.Connection, table: str, column: str) -> None:
    """Add ``column`` to a ``table`` made by an earlier version (its rows get the default)."""
    names = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
    if column.split()[0] not in names:
        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


class SQLiteStore:
    """One key's state in a SQLite file (see the module doc and ``_store.KeyStore``)."""

    durable = True

    #: How long an order in flight holds its slot if its process dies: an activation's life.
    pending_hold = 30 * 60.0
    #: While the server says the account is full, one more order may probe this often.
    probe_interval = 10.0
    #: The success-rate window, and how long handed-out ids are remembered.
    window = 86_400.0
    known_for = 3_600.0
    #: How long an order in flight stays visible if its process dies before it lands
    #: (until a recovery deals with it).
    flight_hold = FLIGHT_KEEP

    def __init__(self, backend: SQLiteBackend, scope: str, clock: Clock) -> None:
        self.backend = backend
        self._scope = scope
        self._clock = clock
        self._owner = uuid.uuid4().hex
        self._heartbeat = Heartbeat(self._beat, backend.lease / 6)
        # Stands in for the file for requests about a number already open, while it fails.
        self._local = MemoryStore(clock)
        self._held_fallback_said = False

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.backend.path!r} {self._scope.partition('@')[0]}>"

    @property
    def owner(self) -> str:
        return self._owner

    def _wait(self, seconds: float) -> float:
        return min(max(seconds, 0.001), self.backend.max_sleep)

    # -- windows --

    async def window_take(self, name: str, limit: RateLimit, want: int) -> Take:
        scope, now = self._scope, self._clock.time()
        hold = limit.period + default_margin(limit.period)
        lease = hold + self.backend.max_request_time

        def work(db: sqlite3.Connection) -> Take:
            db.execute(
                "DELETE FROM tokens WHERE scope = ? AND name = ? AND until <= ?",
                (scope, name, now),
            )
            row = db.execute(
                "SELECT until FROM blocks WHERE scope = ? AND name = ?", (scope, name)
            ).fetchone()
            if row is not None and row[0] > now:
                return Take((), self._wait(row[0] - now))
            (count, first) = db.execute(
                "SELECT COUNT(*), MIN(until) FROM tokens WHERE scope = ? AND name = ?",
                (scope, name),
            ).fetchone()
            free = limit.calls - count
            if free <= 0:
                return Take((), self._wait(min(first, now + hold) - now))
            base = uuid.uuid4().hex
            granted = [f"{base}:{i}" for i in range(1, min(want, free) + 1)]
            db.executemany(
                "INSERT INTO tokens (scope, name, token, until) VALUES (?, ?, ?, ?)",
                [(scope, name, token, now + lease) for token in granted],
            )
            return Take(granted, None)

        try:
            taken = await self.backend.run(work)
        except RateLimitBackendError as exc:
            if not serving_held_number():
                raise
            if not self._held_fallback_said:  # a number already open: its watch goes on
                self._held_fallback_said = True
                logger.warning(
                    "rate limit %s: %s; the numbers already open are watched under "
                    "in-process limits meanwhile",
                    name,
                    exc,
                )
            return await self._local.window_take(name, limit, want)
        self._held_fallback_said = False
        return taken

    async def window_return(self, name: str, limit: RateLimit, token: str, *, spent: bool) -> None:
        if not token:  # a token of the in-process stand-in
            await self._local.window_return(name, limit, token, spent=spent)
            return
        scope, now = self._scope, self._clock.time()
        hold = limit.period + default_margin(limit.period)

        def work(db: sqlite3.Connection) -> None:
            if spent:
                db.execute(
                    "UPDATE tokens SET until = ?, spent = 1 "
                    "WHERE scope = ? AND name = ? AND token = ?",
                    (now + hold, scope, name, token),
                )
            else:
                db.execute(
                    "DELETE FROM tokens WHERE scope = ? AND name = ? AND token = ?",
                    (scope, name, token),
                )

        with anyio.CancelScope(shield=True):  # a request's token is never lost to a cancel
            await self.backend.run(work)

    async def window_leave(self, name: str) -> None:
        return None  # no queue across processes

    async def window_block(self, name: str, limit: RateLimit, seconds: float) -> None:
        scope, until = self._scope, self._clock.time() + seconds

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO blocks (scope, name, until) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, name) DO UPDATE SET until = MAX(until, excluded.until)",
                (scope, name, until),
            )

        await self.backend.run(work)

    # -- slots --

    def _expire_slots(self, db: sqlite3.Connection, now: float) -> None:
        db.execute(
            "DELETE FROM slots WHERE scope = ? AND expire <= ?",
            (self._scope, now - self.backend.slot_grace),
        )

    async def slot_take(self, capacity: int) -> Take:
        scope, now = self._scope, self._clock.time()
        member = "order:" + uuid.uuid4().hex

        def work(db: sqlite3.Connection) -> Take | tuple[str, float]:
            blocked = self._account(db, now)
            if blocked is not None:
                return blocked
            self._expire_slots(db, now)
            (held, first) = db.execute(
                "SELECT COUNT(*), MIN(expire) FROM slots WHERE scope = ?", (scope,)
            ).fetchone()
            row = db.execute(
                "SELECT count, probe_at FROM external WHERE scope = ?", (scope,)
            ).fetchone()
            external, probe_at = (0, math.inf) if row is None else row
            free = capacity - external - held
            if free <= 0 and external > 0 and now >= probe_at:
                external = max(0, min(external - 1, capacity - held - 1))
                db.execute(
                    "UPDATE external SET count = ?, probe_at = ? WHERE scope = ?",
                    (external, now + self.probe_interval, scope),
                )
                free = capacity - external - held
            if free > 0:
                db.execute(
                    "INSERT INTO slots (scope, member, expire, bound) VALUES (?, ?, ?, 0)",
                    (scope, member, now + self.pending_hold),
                )
                return Take((member,), None)
            wait = self.pending_hold
            if first is not None:
                wait = min(wait, first + self.backend.slot_grace - now)
            if external > 0:
                wait = min(wait, probe_at - now)
            return Take((), self._wait(wait))

        result = await self.backend.run(work)
        if isinstance(result, Take):
            return result
        raise blocked_error(*result)

    async def slot_leave(self) -> None:
        return None  # no queue across processes

    def _bind(self, db: sqlite3.Connection, member: str, activation_id: str, expire: float) -> None:
        db.execute("DELETE FROM slots WHERE scope = ? AND member = ?", (self._scope, member))
        db.execute(
            "INSERT OR REPLACE INTO slots (scope, member, expire, bound) VALUES (?, ?, ?, 1)",
            (self._scope, activation_id, expire),
        )

    async def slot_bind(self, member: str, activation_id: str, expire_at: float | None) -> None:
        expire = self._clock.time() + self.pending_hold if expire_at is None else expire_at
        await self.backend.run(lambda db: self._bind(db, member, activation_id, expire))

    async def slot_release(self, member: str) -> None:
        scope = self._scope
        await self.backend.run(
            lambda db: db.execute(
                "DELETE FROM slots WHERE scope = ? AND member = ?", (scope, member)
            )
        )

    async def slot_observe(
        self, activation_id: str, *, ended: bool, expire_at: float | None
    ) -> None:
        if not ended and expire_at is None:
            return
        scope = self._scope

        def work(db: sqlite3.Connection) -> None:
            if ended:
                db.execute(
                    "DELETE FROM slots WHERE scope = ? AND member = ? AND bound = 1",
                    (scope, activation_id),
                )
            else:
                db.execute(
                    "UPDATE slots SET expire = ? WHERE scope = ? AND member = ? AND bound = 1",
                    (expire_at, scope, activation_id),
                )

        await self.backend.run(work)

    async def slots_full(self, capacity: int, member: str | None) -> None:
        scope, now = self._scope, self._clock.time()

        def work(db: sqlite3.Connection) -> None:
            if member is not None:
                db.execute("DELETE FROM slots WHERE scope = ? AND member = ?", (scope, member))
            self._expire_slots(db, now)
            (held,) = db.execute("SELECT COUNT(*) FROM slots WHERE scope = ?", (scope,)).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO external (scope, count, probe_at) VALUES (?, ?, ?)",
                (scope, max(0, capacity - held), now + self.probe_interval),
            )

        await self.backend.run(work)

    # -- the account block --

    def _account(self, db: sqlite3.Connection, now: float) -> tuple[str, float] | None:
        row = db.execute(
            "SELECT message, until FROM account WHERE scope = ? AND until > ?",
            (self._scope, now),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    async def account_block(self, message: str, until: float | None) -> None:
        scope, stamp = self._scope, math.inf if until is None else until
        await self.backend.run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO account (scope, until, message) VALUES (?, ?, ?)",
                (scope, stamp, message),
            )
        )

    async def account_unblock(self) -> None:
        scope = self._scope
        await self.backend.run(
            lambda db: db.execute("DELETE FROM account WHERE scope = ?", (scope,))
        )

    async def account_read(self) -> tuple[str, float] | None:
        now = self._clock.time()
        return await self.backend.run(lambda db: self._account(db, now))

    # -- the success rate --

    def _record_order(self, db: sqlite3.Connection, activation_id: str, now: float) -> None:
        db.execute(
            "INSERT OR IGNORE INTO orders (scope, activation_id, at, sms) VALUES (?, ?, ?, 0)",
            (self._scope, activation_id, now),
        )

    async def record_order(self, activation_id: str) -> None:
        now = self._clock.time()
        await self.backend.run(lambda db: self._record_order(db, activation_id, now))

    async def record_sms(self, activation_id: str) -> None:
        scope = self._scope
        await self.backend.run(
            lambda db: db.execute(
                "UPDATE orders SET sms = 1 WHERE scope = ? AND activation_id = ?",
                (scope, activation_id),
            )
        )

    def _counts(self, db: sqlite3.Connection, now: float) -> tuple[int, int]:
        db.execute(
            "DELETE FROM orders WHERE scope = ? AND at <= ?", (self._scope, now - self.window)
        )
        orders, successes = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(sms), 0) FROM orders WHERE scope = ?", (self._scope,)
        ).fetchone()
        return int(orders), int(successes)

    async def success_counts(self) -> tuple[int, int]:
        now = self._clock.time()
        return await self.backend.run(lambda db: self._counts(db, now))

    # -- handed-out ids and orders in flight --

    def _renew(self, db: sqlite3.Connection, now: float) -> None:
        db.execute(
            "INSERT OR REPLACE INTO owners (scope, owner, until) VALUES (?, ?, ?)",
            (self._scope, self._owner, now + self.backend.lease),
        )

    def _beat(self) -> None:
        now = self._clock.time()
        self.backend.transact(lambda db: self._renew(db, now))

    def _claim(
        self, db: sqlite3.Connection, activation_ids: Sequence[str], now: float
    ) -> list[bool]:
        scope, owner = self._scope, self._owner
        self._renew(db, now)
        db.execute("DELETE FROM known WHERE scope = ? AND at <= ?", (scope, now - self.known_for))
        claimed = []
        for activation_id in activation_ids:
            row = db.execute(
                "SELECT k.owner, o.until FROM known k LEFT JOIN owners o "
                "ON o.scope = k.scope AND o.owner = k.owner "
                "WHERE k.scope = ? AND k.activation_id = ?",
                (scope, activation_id),
            ).fetchone()
            if row is not None and (row[0] == owner or (row[1] or 0) > now):
                claimed.append(False)  # claimed before, by a live owner
                continue
            db.execute(
                "INSERT OR REPLACE INTO known (scope, activation_id, at, owner) "
                "VALUES (?, ?, ?, ?)",
                (scope, activation_id, now, owner),
            )
            claimed.append(True)
        return claimed

    async def claim(self, activation_ids: Sequence[str]) -> list[bool]:
        now = self._clock.time()
        claimed = await self.backend.run(lambda db: self._claim(db, activation_ids, now))
        self._heartbeat.start()
        return claimed

    async def known(self, activation_ids: Sequence[str]) -> set[str]:
        scope, now = self._scope, self._clock.time()
        cutoff = now - self.known_for
        ids = list(activation_ids)

        def work(db: sqlite3.Connection) -> set[str]:
            return {
                aid
                for aid in ids
                if db.execute(
                    "SELECT 1 FROM known k JOIN owners o ON o.scope = k.scope "
                    "AND o.owner = k.owner WHERE k.scope = ? AND k.activation_id = ? "
                    "AND k.at > ? AND o.until > ?",
                    (scope, aid, cutoff, now),
                ).fetchone()
            }

        return await self.backend.run(work) if ids else set()

    async def flight_start(self, offer: str, slot: str | None = None) -> str:
        scope, now = self._scope, self._clock.time()
        flight = uuid.uuid4().hex

        def work(db: sqlite3.Connection) -> None:
            self._renew(db, now)
            db.execute(
                "INSERT INTO flights (scope, flight, owner, offer, until, at, slot) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (scope, flight, self._owner, offer, now + self.flight_hold, now, slot),
            )

        await self.backend.run(work)
        self._heartbeat.start()
        return flight

    def _flight_end(self, db: sqlite3.Connection, flight: str) -> None:
        db.execute("DELETE FROM flights WHERE scope = ? AND flight = ?", (self._scope, flight))

    async def flight_end(self, flight: str) -> None:
        await self.backend.run(lambda db: self._flight_end(db, flight))

    async def order_landed(
        self,
        flight: str | None,
        slot: str | None,
        activation_id: str,
        record: str,
        expire_at: float,
    ) -> bool:
        now = self._clock.time()

        def work(db: sqlite3.Connection) -> bool:
            if slot is not None:
                self._bind(db, slot, activation_id, expire_at)
            (claimed,) = self._claim(db, [activation_id], now)
            self._journal_put(db, activation_id, record, expire_at, now)
            self._record_order(db, activation_id, now)
            if flight is not None:
                self._flight_end(db, flight)
            return claimed

        claimed = await self.backend.run(work)
        self._heartbeat.start()
        return claimed

    async def flights_elsewhere(self) -> list[str]:
        scope, now = self._scope, self._clock.time()

        def work(db: sqlite3.Connection) -> list[str]:
            db.execute("DELETE FROM flights WHERE scope = ? AND until <= ?", (scope, now))
            rows = db.execute(
                "SELECT f.offer FROM flights f JOIN owners o ON o.scope = f.scope "
                "AND o.owner = f.owner WHERE f.scope = ? AND f.owner != ? AND o.until > ?",
                (scope, self._owner, now),
            )
            return [offer for (offer,) in rows]

        return await self.backend.run(work)

    async def flights_orphaned(self) -> list[str]:
        scope, now = self._scope, self._clock.time()

        def work(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT f.offer FROM flights f LEFT JOIN owners o ON o.scope = f.scope "
                "AND o.owner = f.owner WHERE f.scope = ? AND f.until > ? "
                "AND (o.until IS NULL OR o.until <= ?)",
                (scope, now, now),
            )
            return [offer for (offer,) in rows]

        return await self.backend.run(work)

    async def flights_list(self) -> list[Flight]:
        scope, now, me = self._scope, self._clock.time(), self._owner

        def work(db: sqlite3.Connection) -> list[Flight]:
            db.execute("DELETE FROM flights WHERE scope = ? AND until <= ?", (scope, now))
            rows = db.execute(
                "SELECT f.flight, f.offer, f.at, f.owner, COALESCE(o.until, 0), f.slot "
                "FROM flights f LEFT JOIN owners o ON o.scope = f.scope AND o.owner = f.owner "
                "WHERE f.scope = ? ORDER BY f.at",
                (scope,),
            )
            return [
                Flight(name, offer, float(at), owner, owner == me or until > now, slot)
                for name, offer, at, owner, until, slot in rows
            ]

        return await self.backend.run(work)

    # -- dashboards --

    async def snapshot(self, limits: Mapping[str, RateLimit], capacity: int) -> StoreSnapshot:
        scope, now = self._scope, self._clock.time()

        def work(db: sqlite3.Connection) -> StoreSnapshot:
            windows = {}
            for name, limit in limits.items():
                db.execute(
                    "DELETE FROM tokens WHERE scope = ? AND name = ? AND until <= ?",
                    (scope, name, now),
                )
                tokens, cooling, soonest = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(spent), 0), MIN(until) FROM tokens "
                    "WHERE scope = ? AND name = ?",
                    (scope, name),
                ).fetchone()
                row = db.execute(
                    "SELECT until FROM blocks WHERE scope = ? AND name = ?", (scope, name)
                ).fetchone()
                blocked_for = 0.0 if row is None else max(0.0, row[0] - now)
                windows[name] = LimiterState(
                    name=name,
                    calls=limit.calls,
                    period=limit.period,
                    available=0 if blocked_for > 0 else max(0, limit.calls - tokens),
                    in_use=tokens - cooling,
                    cooling=cooling,
                    waiters=0,
                    blocked_for=blocked_for,
                    next_return_in=None if soonest is None else soonest - now,
                )
            self._expire_slots(db, now)
            held, bound, first = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(bound), 0), MIN(expire) FROM slots WHERE scope = ?",
                (scope,),
            ).fetchone()
            row = db.execute("SELECT count FROM external WHERE scope = ?", (scope,)).fetchone()
            external = 0 if row is None else row[0]
            slots = SlotsState(
                capacity=capacity,
                effective_capacity=capacity - external,
                external=external,
                in_use=held,
                bound=bound,
                available=max(0, capacity - external - held),
                waiters=0,
                next_expiry_in=None if first is None else first + self.backend.slot_grace - now,
            )
            orders, successes = self._counts(db, now)
            blocked = self._account(db, now)
            blocked_for = 0.0 if blocked is None else blocked[1] - now
            return StoreSnapshot(windows, slots, orders, successes, blocked_for)

        return await self.backend.run(work)

    async def aclose(self) -> None:
        """Stop renewing this owner's lease."""
        self._heartbeat.stop()

    # -- the journal of open numbers --

    def _journal_put(
        self, db: sqlite3.Connection, activation_id: str, record: str, expire_at: float, now: float
    ) -> None:
        self._renew(db, now)
        db.execute(
            "INSERT OR REPLACE INTO journal (scope, activation_id, owner, record, expire) "
            "VALUES (?, ?, ?, ?, ?)",
            (self._scope, activation_id, self._owner, record, expire_at),
        )

    async def journal_put(self, activation_id: str, record: str, expire_at: float) -> None:
        now = self._clock.time()
        await self.backend.run(
            lambda db: self._journal_put(db, activation_id, record, expire_at, now)
        )
        self._heartbeat.start()

    async def journal_update(self, records: Mapping[str, tuple[str, float]]) -> None:
        scope = self._scope
        rows = [(record, expire, scope, aid) for aid, (record, expire) in records.items()]
        if rows:
            await self.backend.run(
                lambda db: db.executemany(
                    "UPDATE journal SET record = ?, expire = ? "
                    "WHERE scope = ? AND activation_id = ?",
                    rows,
                )
            )

    async def journal_remove(self, activation_ids: Sequence[str]) -> None:
        scope = self._scope
        rows = [(scope, aid) for aid in activation_ids]
        if rows:
            await self.backend.run(
                lambda db: db.executemany(
                    "DELETE FROM journal WHERE scope = ? AND activation_id = ?", rows
                )
            )

    async def journal_list(self) -> list[JournalEntry]:
        scope, now, me = self._scope, self._clock.time(), self._owner

        def work(db: sqlite3.Connection) -> list[JournalEntry]:
            db.execute(
                "DELETE FROM journal WHERE scope = ? AND expire <= ?", (scope, now - JOURNAL_KEEP)
            )
            rows = db.execute(
                "SELECT j.activation_id, j.record, j.owner, COALESCE(o.until, 0) FROM journal j "
                "LEFT JOIN owners o ON o.scope = j.scope AND o.owner = j.owner "
                "WHERE j.scope = ? ORDER BY j.expire",
                (scope,),
            )
            return [
                JournalEntry(aid, record, owner, owner == me or until > now)
                for aid, record, owner, until in rows
            ]

        return await self.backend.run(work)

    async def journal_take(self, activation_ids: Sequence[str]) -> list[bool]:
        scope, now, me = self._scope, self._clock.time(), self._owner
        ids = list(activation_ids)

        def work(db: sqlite3.Connection) -> list[bool]:
            self._renew(db, now)
            taken = []
            for aid in ids:
                row = db.execute(
                    "SELECT j.owner, COALESCE(o.until, 0) FROM journal j LEFT JOIN owners o "
                    "ON o.scope = j.scope AND o.owner = j.owner "
                    "WHERE j.scope = ? AND j.activation_id = ?",
                    (scope, aid),
                ).fetchone()
                if row is None or (row[0] != me and row[1] > now):
                    taken.append(False)  # gone, or a live owner's
                    continue
                db.execute(
                    "UPDATE journal SET owner = ? WHERE scope = ? AND activation_id = ?",
                    (me, scope, aid),
                )
                taken.append(True)
            return taken

        taken = await self.backend.run(work)
        self._heartbeat.start()
        return taken

    # -- spending --

    def _counted(
        self, db: sqlite3.Connection, period: float, now: float
    ) -> list[tuple[float, int]]:
        db.execute("DELETE FROM spend WHERE scope = ? AND at <= ?", (self._scope, now - SPEND_KEPT))
        rows = db.execute(
            "SELECT at, cents FROM spend WHERE scope = ? AND at > ? ORDER BY at",
            (self._scope, now - period),
        )
        return [(float(at), int(cents)) for at, cents in rows]

    async def spend_take(self, cents: int, period: float, price: int) -> SpendTake:
        scope, now = self._scope, self._clock.time()
        entry = "spend:" + uuid.uuid4().hex

        def work(db: sqlite3.Connection) -> SpendTake:
            counted = self._counted(db, period, now)
            total = sum(amount for _, amount in counted)
            if total + price > cents:
                return SpendTake(None, total, spend_room_in(counted, price, cents, period, now))
            db.execute(
                "INSERT INTO spend (scope, name, at, cents) VALUES (?, ?, ?, ?)",
                (scope, entry, now, price),
            )
            return SpendTake(entry, total, None)

        return await self.backend.run(work)

    async def spend_bind(self, entry: str, activation_id: str, price: int) -> None:
        scope, now = self._scope, self._clock.time()

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM spend WHERE scope = ? AND name = ?", (scope, entry))
            db.execute(
                "INSERT OR REPLACE INTO spend (scope, name, at, cents) VALUES (?, ?, ?, ?)",
                (scope, activation_id, now, price),
            )

        await self.backend.run(work)

    async def spend_release(self, name: str) -> None:
        scope = self._scope
        await self.backend.run(
            lambda db: db.execute("DELETE FROM spend WHERE scope = ? AND name = ?", (scope, name))
        )

    async def spend_counted(self, period: float) -> int:
        now = self._clock.time()
        counted = await self.backend.run(lambda db: self._counted(db, period, now))
        return sum(amount for _, amount in counted)

    # -- end of spending --
