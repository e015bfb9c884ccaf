"""The Redis backend: one key's limits shared by every process and host of a fleet.

``AsyncPlatfone(..., limits_backend=RedisBackend.from_url("redis://..."))`` (or the
``PLATFONE_REDIS_URL`` environment variable) keeps, in Redis, what the in-memory backend
keeps in the process: each endpoint's rolling window, the activation slots, a server
429's pause, the account block, the success-rate counts and the ids handed out to
callers (for reconciliation). Each operation is one atomic Lua script (``_scripts``) on
Redis's own clock, so hosts whose clocks disagree share one window.

:class:`RedisStore` is the key's :class:`~._store.KeyStore`: within a process the
waiters of one resource queue in the generic :class:`~._wait.Gate` and only the head asks
Redis, sleeping as long as the script says (at most ``max_sleep``, its heartbeat).

A Redis restarted without persistence forgets every window: the store notices (its
epoch key is gone although this process saw one) and holds each window full for one
period after it, so a restart never lets a burst over the limit.

redis-py's asyncio client serves asyncio (one client per event loop: a sync ``Platfone``
runs its own); under trio, which redis-py does not support, its sync client runs in a
worker thread. When Redis cannot be reached or fails, an operation raises
:class:`RateLimitBackendError` before any request leaves - or, with
``on_backend_error="local"``, falls back to in-process limits with a WARNING.
"""

from __future__ import annotations

import math
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread
import attrs

from .._clock import Clock
from .._errors import RateLimitBackendError
from . import _scripts
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
    order_landed_in_steps,
)
from ._wait import logger, serving_held_number

__all__ = ["OnBackendError", "RedisBackend", "RedisStore"]

T = TypeVar("T")

OnBackendError = Literal["raise", "local"]

#: How soon a waiter asks again while free tokens go to older waiters of other processes.
_CLAIMING = 0.005
#: A far-future "until" for a block lifted only by hand (Lua has no infinity literal).
_FOREVER = 1e18


def _running_asyncio_loop() -> object | None:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Connections:
    """redis-py clients for whatever event loop runs the caller, and the scripts on them."""

    def __init__(self, url: str | None, client: Any | None, timeout: float) -> None:
        self._url = url
        self._given = client
        self._timeout = timeout
        self._given_loop: object | None = None
        self._lock = threading.Lock()
        self._async: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._sync: Any = None
        # Registered scripts (EVALSHA, re-sent by redis-py after a SCRIPT FLUSH), per client.
        self._registered: weakref.WeakKeyDictionary[Any, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _script(self, client: Any, text: str) -> Any:
        with self._lock:
            scripts = self._registered.setdefault(client, {})
            script = scripts.get(text)
            if script is None:
                script = scripts[text] = client.register_script(text)
            return script

    def _async_client(self, loop: object) -> Any:
        with self._lock:
            client = self._async.get(loop)
            if client is not None:
                return client
            import redis.asyncio

            if self._given is not None and isinstance(self._given, redis.asyncio.Redis):
                if self._given_loop is None:
                    self._given_loop = loop
                if self._given_loop is loop:
                    client = self._given
            if client is None:
                client = (
                    redis.asyncio.Redis(connection_pool=_clone_pool(self._given, asyncio=True))
                    if self._url is None
                    else redis.asyncio.Redis(
                        # A call beyond the pool's connections waits for one (redis-py's
                        # default pool raises "Too many connections" past 100), however
                        # long: each one in use is freed within its own socket timeout.
                        # (A bound here failed calls on a loaded machine, Redis healthy.)
                        connection_pool=redis.asyncio.BlockingConnectionPool.from_url(
                            self._url,
                            max_connections=_MAX_CONNECTIONS,
                            timeout=None,
                            socket_timeout=self._timeout,
                            socket_connect_timeout=self._timeout,
                        )
                    )
                )
            self._async[loop] = client
            return client

    def _sync_client(self) -> Any:
        with self._lock:
            if self._sync is None:
                import redis

                if self._given is not None and isinstance(self._given, redis.Redis):
                    self._sync = self._given
                elif self._url is None:
                    self._sync = redis.Redis(
                        connection_pool=_clone_pool(self._given, asyncio=False)
                    )
                else:
                    self._sync = redis.Redis.from_url(
                        self._url,
                        socket_timeout=self._timeout,
                        socket_connect_timeout=self._timeout,
                    )
            return self._sync

    async def run(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        """Run ``script`` atomically; :class:`RateLimitBackendError` when Redis fails.

        A connection error is tried once more, on a fresh connection: after a restart of
        Redis the pool's connections are dead, and the first use of each fails. (Should
        the lost call have run, its tokens count as in flight until their lease: never
        more requests than the limit, only fewer for a while.)"""
        import redis.exceptions

        try:
            try:
                return await self._run_once(script, keys, args)
            except redis.exceptions.ConnectionError:
                return await self._run_once(script, keys, args)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise RateLimitBackendError(
                f"the Redis limits backend failed ({type(exc).__name__}: {exc}); "
                "no request was sent"
            ) from exc

    async def _run_once(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        loop = _running_asyncio_loop()
        if loop is not None:
            client = self._async_client(loop)
            return await self._script(client, script)(keys=keys, args=args, client=client)
        sync = self._sync_client()
        registered = self._script(sync, script)
        return await anyio.to_thread.run_sync(lambda: registered(keys=keys, args=args, client=sync))

    def run_sync(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        """:meth:`run` from a thread without an event loop (the lease's heartbeat)."""
        import redis.exceptions

        try:
            sync = self._sync_client()
            return self._script(sync, script)(keys=keys, args=args, client=sync)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise RateLimitBackendError(f"the Redis limits backend failed ({exc})") from exc

    async def aclose(self) -> None:
        loop = _running_asyncio_loop()
        with self._lock:
            client = self._async.pop(loop, None) if loop is not None else None
            sync, self._sync = self._sync, None
        if client is not None and client is not self._given:
            await client.aclose(close_connection_pool=True)  # its pool is ours
        if sync is not None and sync is not self._given:
            sync.close()


#: Connections to Redis per event loop; a call beyond them waits for one.
_MAX_CONNECTIONS = 100


def _clone_pool(client: Any, *, asyncio: bool) -> Any:
    """A connection pool like ``client``'s, for another event loop or for threads."""
    import redis
    import redis.asyncio

    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    name = pool.connection_class.__name__
    module: Any = redis.asyncio if asyncio else redis
    connection_class = getattr(module, name, None) or getattr(module.connection, name)
    pool_class = module.ConnectionPool
    return pool_class(connection_class=connection_class, **kwargs)


@attrs.define(eq=False)
class RedisBackend:
    """State shared through Redis by every process and host on one API key.

    Make it with :meth:`from_url` or from a ``redis.asyncio.Redis`` (or ``redis.Redis``)
    you already have, and pass it as ``limits_backend=``. Keys are
    ``{prefix}:{<key fingerprint>@<base URL>}:...`` (a digest of the API key, never the
    key) and all expire.

    Args:
        client: An existing redis-py client (asyncio or sync); or use :meth:`from_url`.
        prefix: The first part of every key.
        on_backend_error: ``"raise"`` (default): when Redis fails, raise
            :class:`RateLimitBackendError` and send nothing; ``"local"``: fall back to
            in-process limits, with a WARNING, until Redis answers again.
        max_request_time: The longest a request holds a token of its endpoint: the token
            of a process that died mid-request comes back after this (plus the period).
        max_sleep: The longest a waiter sleeps before asking Redis again.
        slot_grace: Seconds a slot stays taken after its activation's ``expire_at`` (the
            server needs a moment to expire it too).
        lease: Seconds an owner's orders in flight and claims count after its last
            heartbeat (sent every ``lease / 6`` s): a dead process blocks no other's
            reconciliation for longer.
        timeout: Seconds to connect to Redis and for each answer (``from_url`` only; a
            client you pass keeps its own settings): a Redis that hangs fails the call
            with :class:`RateLimitBackendError` instead of hanging it.
    """

    client: Any = attrs.field(default=None, repr=False)
    prefix: str = "platfone"
    on_backend_error: OnBackendError = attrs.field(default="raise")
    max_request_time: float = 300.0
    max_sleep: float = 1.0
    slot_grace: float = 5.0
    timeout: float = 5.0
    lease: float = 30.0
    url: str | None = attrs.field(default=None, repr=False, kw_only=True)
    _connections: _Connections = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.on_backend_error not in ("raise", "local"):
            raise ValueError("on_backend_error must be 'raise' or 'local'")
        if self.client is None and self.url is None:
            raise ValueError("pass a redis client, or use RedisBackend.from_url(url)")
        self._connections = _Connections(self.url, self.client, self.timeout)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "platfone",
        on_backend_error: OnBackendError = "raise",
        max_request_time: float = 300.0,
        max_sleep: float = 1.0,
        slot_grace: float = 5.0,
        timeout: float = 5.0,
        lease: float = 30.0,
    ) -> RedisBackend:
        """A backend on the Redis server at ``url`` (``redis://host:6379/0``, ``rediss://``)."""
        return cls(
            None,
            prefix=prefix,
            on_backend_error=on_backend_error,
            max_request_time=max_request_time,
            max_sleep=max_sleep,
            slot_grace=slot_grace,
            timeout=timeout,
            lease=lease,
            url=url,
        )

    async def aclose(self) -> None:
        """Close the connections this backend opened for the running event loop."""
        await self._connections.aclose()

    async def __aenter__(self) -> RedisBackend:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def open_store(self, scope: str, clock: Clock) -> RedisStore:
        return RedisStore(self, scope, clock)

    async def run(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        return await self._connections.run(script, keys, args)


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


#: How long the epoch key lives without a use (a fleet idle longer starts afresh).
_EPOCH_TTL = 30 * 86_400.0


class RedisStore:
    """One key's state in Redis (see the module doc and ``_store.KeyStore``)."""

    durable = True

    #: How long an order in flight holds its slot if its process dies: an activation's life.
    pending_hold = 30 * 60.0
    #: While the server says the account is full, one more order may probe this often.
    probe_interval = 10.0
    #: The success-rate window, and how long handed-out ids are remembered.
    window = 86_400.0
    known_for = 3_600.0
    #: How long an order in flight stays visible to the fleet if its process dies
    #: before it lands (a live order ends its flight when answered or failed; a
    #: recovery, one its process left).
    flight_hold = FLIGHT_KEEP

    def __init__(self, backend: RedisBackend, scope: str, clock: Clock) -> None:
        self.backend = backend
        self._clock = clock
        self._scope = scope
        self._owner = uuid.uuid4().hex
        self._stale = 3 * backend.max_sleep + 5.0
        self._slot_ttl = _ms(self.pending_hold + 3600.0)
        self._slot_keys = [self._key("slots", part) for part in ("held", "q", "seen", "ext")]
        self._account_key = self._key("account")
        self._success_keys = [self._key("success", "orders"), self._key("success", "sms")]
        self._known_keys = [self._key("known"), self._key("claimers"), self._key("owners")]
        self._flights_keys = [self._key("flights"), self._key("owners"), self._key("left")]
        self._heartbeat = Heartbeat(self._beat, backend.lease / 6)
        self._epoch_keys = [self._key("epoch"), self._key("restarted")]
        self._journal_keys = [self._key("journal", part) for part in ("records", "owner", "expiry")]
        self._epoch = ""  # the epoch this process last saw ("" before its first look)
        self._lock = threading.Lock()
        self._owed: list[tuple[str, list[str], list[object]]] = []  # writes Redis missed
        self._settling = False  # a task is applying them
        self._seen: dict[str, tuple[bool, float | None]] = {}
        self._sms_shared: set[str] = set()
        # The in-process stand-in for on_backend_error="local".
        self._local = MemoryStore(clock)
        self._local_members: set[str] = set()
        self._held_fallback_said = False

    def __repr__(self) -> str:
        return f"<RedisStore {self.backend.prefix}:{{{self._scope}}}>"

    @property
    def owner(self) -> str:
        return self._owner

    def _key(self, *parts: str) -> str:
        return ":".join([self.backend.prefix, "{" + self._scope + "}", *parts])

    def _window_keys(self, name: str) -> list[str]:
        return [self._key("w", name, part) for part in ("tokens", "q", "seen", "block")]

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        return await self.backend.run(script, keys, args)

    async def _or_local(
        self, what: str, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        """``shared()``; when Redis fails and the backend allows it, ``local()`` instead."""
        try:
            result = await shared()
        except RateLimitBackendError as exc:
            if self.backend.on_backend_error == "local":
                logger.warning("%s: %s; using in-process limits meanwhile", what, exc)
            elif not serving_held_number():
                raise
            elif not self._held_fallback_said:  # a number already open: its watch goes on
                self._held_fallback_said = True
                logger.warning(
                    "%s: %s; the numbers already open are watched under in-process "
                    "limits meanwhile",
                    what,
                    exc,
                )
            return await local()
        self._held_fallback_said = False  # the outage (if any) is over: say the next one
        return result

    async def _owe(self, script: str, keys: list[str], args: list[object]) -> None:
        """Apply a write; if Redis fails, keep it and apply it (with any others owed, in
        order) before the next take - a slot or a spent token is never lost to an outage.
        With nothing owed it goes at once, in one round trip."""
        write = (script, keys, args)
        with self._lock:
            owing = bool(self._owed)
            if owing:
                self._owed.append(write)
        if owing:
            await self._settle()
            return
        try:
            await self._run(*write)
        except RateLimitBackendError:
            with self._lock:
                self._owed.append(write)
            raise

    async def _settle(self) -> None:
        """Apply the writes owed, in order, one task at a time (another task's writes owed
        meanwhile are applied by the task settling: each goes once)."""
        with self._lock:
            if self._settling or not self._owed:
                return
            self._settling = True
        try:
            while True:
                with self._lock:
                    if not self._owed:
                        return
                    first = self._owed[0]
                await self._run(*first)
                with self._lock:
                    self._owed.pop(0)
        finally:
            with self._lock:
                self._settling = False

    # -- windows --

    def _hold(self, limit: RateLimit) -> float:
        return limit.period + default_margin(limit.period)

    async def window_take(self, name: str, limit: RateLimit, want: int) -> Take:
        async def shared() -> Take:
            await self._settle()
            hold = self._hold(limit)
            lease = hold + self.backend.max_request_time
            base = uuid.uuid4().hex
            fresh = uuid.uuid4().hex
            args = [
                limit.calls,
                repr(lease),
                base,
                self._owner,
                repr(self._stale),
                repr(hold),
                _ms(lease + hold + 60.0),
                want,
                repr(hold),
                self._epoch,
                fresh,
                _ms(_EPOCH_TTL),
            ]
            reply = await self._run(
                _scripts.WINDOW_ACQUIRE, [*self._window_keys(name), *self._epoch_keys], args
            )
            granted, wait, epoch = int(reply[0]), float(_text(reply[1])), _text(reply[2])
            if epoch != self._epoch:
                if self._epoch:
                    logger.warning(
                        "the Redis limits backend lost its state (restarted?): every window "
                        "of key %s is held full for one period",
                        self._scope.partition("@")[0],
                    )
                self._epoch = epoch
            if granted:
                return Take([f"{base}:{i}" for i in range(1, granted + 1)], None)
            if wait < 0:
                return Take((), _CLAIMING)  # free tokens are held for older waiters
            return Take((), min(max(wait, 0.001), self.backend.max_sleep))

        return await self._or_local(
            f"rate limit {name}", shared, lambda: self._local.window_take(name, limit, want)
        )

    async def window_return(self, name: str, limit: RateLimit, token: str, *, spent: bool) -> None:
        if not token:  # a token of the in-process stand-in
            await self._local.window_return(name, limit, token, spent=spent)
            return
        tokens = self._window_keys(name)[:1]
        if not spent:
            await self._run(_scripts.REMOVE, tokens, [token])
            return
        hold = self._hold(limit)
        ttl = _ms(hold + self.backend.max_request_time + hold + 60.0)
        # Owed when Redis fails: the token stays "in flight" (it comes back by itself
        # after its lease) and is stamped again, later than it should be, never sooner.
        with anyio.CancelScope(shield=True):
            await self._owe(_scripts.WINDOW_RELEASE, tokens, [token, repr(hold), ttl])

    async def window_leave(self, name: str) -> None:
        await self._run(_scripts.LEAVE_QUEUE, self._window_keys(name)[1:3], [self._owner])

    async def window_block(self, name: str, limit: RateLimit, seconds: float) -> None:
        await self._local.window_block(name, limit, seconds)
        await self._run(_scripts.WINDOW_BLOCK, self._window_keys(name)[3:], [repr(seconds)])

    # -- slots --

    async def slot_take(self, capacity: int) -> Take:
        async def shared() -> Take:
            await self._settle()
            member = "order:" + uuid.uuid4().hex
            args = [
                capacity,
                member,
                repr(self.pending_hold),
                self._owner,
                repr(self._stale),
                repr(self.backend.slot_grace),
                self._slot_ttl,
                repr(self.probe_interval),
            ]
            reply = await self._run(
                _scripts.SLOTS_ACQUIRE, [*self._slot_keys, self._account_key], args
            )
            status = int(reply[0])
            if status == -1:
                until = float(_text(reply[1]))
                raise blocked_error(_text(reply[2]), math.inf if until >= _FOREVER else until)
            if status == 1:
                return Take((member,), None)
            seconds = float(_text(reply[1]))
            if seconds < 0:
                return Take((), _CLAIMING)
            return Take((), min(max(seconds, 0.001), self.backend.max_sleep))

        async def local() -> Take:
            taken = await self._local.slot_take(capacity)
            self._local_members.update(taken.granted)
            return taken

        return await self._or_local("activation slots", shared, local)

    async def slot_leave(self) -> None:
        await self._run(_scripts.LEAVE_QUEUE, self._slot_keys[1:3], [self._owner])

    async def slot_bind(self, member: str, activation_id: str, expire_at: float | None) -> None:
        if member in self._local_members:
            self._local_members.discard(member)
            self._local_members.add(activation_id)
            await self._local.slot_bind(member, activation_id, expire_at)
            return
        args: list[object] = [
            member,
            activation_id,
            "" if expire_at is None else repr(expire_at),
            repr(self.pending_hold),
            self._slot_ttl,
        ]
        await self._owe(_scripts.SLOTS_BIND, self._slot_keys[:1], args)
        if expire_at is not None:
            self._saw(activation_id, (False, expire_at))  # its next observe is no news

    async def slot_release(self, member: str) -> None:
        if member in self._local_members:
            self._local_members.discard(member)
            await self._local.slot_release(member)
            return
        await self._owe(_scripts.REMOVE, self._slot_keys[:1], [member])

    async def slot_observe(
        self, activation_id: str, *, ended: bool, expire_at: float | None
    ) -> None:
        if activation_id in self._local_members:
            if ended:
                self._local_members.discard(activation_id)
            await self._local.slot_observe(activation_id, ended=ended, expire_at=expire_at)
            return
        seen = (ended, expire_at)
        if self._seen.get(activation_id) == seen:
            return  # nothing new: no round trip per poll
        if ended:
            self._seen.pop(activation_id, None)
            await self._owe(_scripts.REMOVE, self._slot_keys[:1], [activation_id])
            return
        await self._run(
            _scripts.SLOTS_OBSERVE,
            self._slot_keys[:1],
            [activation_id, "0", "" if expire_at is None else repr(expire_at)],
        )
        self._saw(activation_id, seen)

    def _saw(self, activation_id: str, seen: tuple[bool, float | None]) -> None:
        """Redis holds what ``seen`` says of the slot of ``activation_id``."""
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[activation_id] = seen

    async def slots_full(self, capacity: int, member: str | None) -> None:
        if member is not None and member in self._local_members:
            self._local_members.discard(member)
            await self._local.slots_full(capacity, member)
            member = None
        if member is not None:
            await self._owe(_scripts.REMOVE, self._slot_keys[:1], [member])
        await self._run(
            _scripts.SLOTS_SERVER_FULL,
            [self._slot_keys[0], self._slot_keys[3]],
            [member or "", capacity, repr(self.probe_interval), self._slot_ttl],
        )

    # -- the account block --

    async def account_block(self, message: str, until: float | None) -> None:
        ttl = 86_400.0 * 30 if until is None else max(until - self._clock.time(), 1.0)
        await self._local.account_block(message, until)
        await self._run(
            _scripts.ACCOUNT_BLOCK,
            [self._account_key],
            ["set", repr(_FOREVER if until is None else until), message, _ms(ttl)],
        )

    async def account_unblock(self) -> None:
        await self._local.account_unblock()
        await self._run(_scripts.ACCOUNT_BLOCK, [self._account_key], ["clear"])

    async def account_read(self) -> tuple[str, float] | None:
        async def shared() -> tuple[str, float] | None:
            reply = await self._run(_scripts.ACCOUNT_READ, [self._account_key], [])
            if not reply:
                return None
            until = float(_text(reply[0]))
            return _text(reply[1]), math.inf if until >= _FOREVER else until

        return await self._or_local("the account block", shared, self._local.account_read)

    # -- the success rate --

    async def record_order(self, activation_id: str) -> None:
        await self._local.record_order(activation_id)
        await self._run(
            _scripts.SUCCESS_RECORD,
            self._success_keys,
            ["order", activation_id, repr(self.window), _ms(self.window + 60)],
        )

    async def record_sms(self, activation_id: str) -> None:
        await self._local.record_sms(activation_id)
        if activation_id in self._sms_shared:
            return  # counted already: no round trip per poll
        if len(self._sms_shared) > 10_000:
            self._sms_shared.clear()
        self._sms_shared.add(activation_id)
        await self._run(
            _scripts.SUCCESS_RECORD,
            self._success_keys,
            ["sms", activation_id, repr(self.window), _ms(self.window + 60)],
        )

    async def success_counts(self) -> tuple[int, int]:
        async def shared() -> tuple[int, int]:
            orders, successes = await self._run(
                _scripts.SUCCESS_COUNTS, self._success_keys, [repr(self.window)]
            )
            return int(orders), int(successes)

        return await self._or_local("the success rate", shared, self._local.success_counts)

    # -- handed-out ids and orders in flight --

    async def claim(self, activation_ids: Sequence[str]) -> list[bool]:
        if not activation_ids:
            return []
        args = [
            repr(self.known_for),
            _ms(self.known_for + 60),
            self._owner,
            repr(self.backend.lease),
            *activation_ids,
        ]
        reply = await self._run(_scripts.KNOWN_CLAIM, self._known_keys, args)
        self._heartbeat.start()
        return [bool(int(x)) for x in reply]

    async def known(self, activation_ids: Sequence[str]) -> set[str]:
        if not activation_ids:
            return set()

        async def shared() -> set[str]:
            reply = await self._run(_scripts.KNOWN_FILTER, self._known_keys, activation_ids)
            return {a for a, flag in zip(activation_ids, reply, strict=True) if int(flag)}

        return await self._or_local(
            "reading handed-out ids", shared, lambda: self._local.known(activation_ids)
        )

    async def flight_start(self, offer: str, slot: str | None = None) -> str:
        async def shared() -> str:
            flight = f"{self._owner}:{uuid.uuid4().hex}|{offer}"
            args: list[object] = [
                flight,
                repr(self.flight_hold),
                _ms(self.flight_hold + 60),
                slot or "",
                self._owner,
                repr(self.backend.lease),
                _ms(self.known_for + 60),
            ]
            await self._run(_scripts.FLIGHT_START, self._flights_keys, args)
            self._heartbeat.start()  # the flight's owner lives from its first one on
            return flight

        async def local() -> str:
            return "local:" + await self._local.flight_start(offer, slot)

        return await self._or_local("sharing an order in flight", shared, local)

    async def flight_end(self, flight: str) -> None:
        if flight.startswith("local:"):
            await self._local.flight_end(flight.removeprefix("local:"))
            return
        await self._run(_scripts.FLIGHT_END, self._flights_keys, [flight])

    async def order_landed(
        self,
        flight: str | None,
        slot: str | None,
        activation_id: str,
        record: str,
        expire_at: float,
    ) -> bool:
        local = (flight or "").startswith("local:") or slot in self._local_members
        if local:  # in-process stand-ins took part: each goes where it lives
            return await order_landed_in_steps(self, flight, slot, activation_id, record, expire_at)
        await self._settle()  # a write Redis missed comes first (this one binds a slot)
        await self._local.record_order(activation_id)
        keys = [
            self._slot_keys[0],
            *self._known_keys,
            *self._journal_keys,
            self._success_keys[0],
            self._flights_keys[0],
            self._flights_keys[2],
        ]
        args: list[object] = [
            slot or "",
            activation_id,
            record,
            repr(expire_at),
            self._slot_ttl,
            repr(self.known_for),
            self._owner,
            repr(self.backend.lease),
            _ms(self.known_for + 60),
            _ms(JOURNAL_KEEP + 7200.0),
            _ms(self.window + 60),
            flight or "",
        ]
        claimed = await self._run(_scripts.ORDER_LANDED, keys, args)
        self._heartbeat.start()
        self._saw(activation_id, (False, expire_at))
        return bool(int(claimed))

    async def flights_elsewhere(self) -> list[str]:
        async def shared() -> list[str]:
            reply = await self._run(_scripts.FLIGHT_LIST, self._flights_keys, [])
            mine = self._owner + ":"
            return [m.partition("|")[2] for m in map(_text, reply) if not m.startswith(mine)]

        return await self._or_local(
            "reading the fleet's orders in flight", shared, self._local.flights_elsewhere
        )

    async def flights_orphaned(self) -> list[str]:
        async def shared() -> list[str]:
            reply = await self._run(_scripts.FLIGHT_ORPHANS, self._flights_keys, [])
            return [m.partition("|")[2] for m in map(_text, reply)]

        return await self._or_local(
            "reading the fleet's orphaned orders", shared, self._local.flights_orphaned
        )

    async def flights_list(self) -> list[Flight]:
        reply = await self._run(_scripts.FLIGHTS_ALL, self._flights_keys, [])
        flights = []
        for i in range(0, len(reply), 3):
            member, (left, _, slot) = _text(reply[i]), _text(reply[i + 1]).partition("|")
            owner, _, rest = member.partition(":")
            offer = rest.partition("|")[2]
            alive = owner == self._owner or bool(int(reply[i + 2]))
            flights.append(Flight(member, offer, float(left or 0), owner, alive, slot or None))
        flights.sort(key=lambda f: f.left)
        return flights

    # -- dashboards --

    async def snapshot(self, limits: Mapping[str, RateLimit], capacity: int) -> StoreSnapshot:
        grace = self.backend.slot_grace
        keys = [self._slot_keys[0], self._slot_keys[1], self._slot_keys[3], self._account_key]
        args: list[object] = [repr(grace)]
        for name, limit in limits.items():
            tokens, queue, _, block = self._window_keys(name)
            keys += [tokens, queue, block]
            args.append(repr(self._hold(limit)))
        reply = await self._run(_scripts.FLEET_STATE, keys, args)
        held, next_expiry, waiters, external = int(reply[0]), _text(reply[1]), reply[2], reply[3]
        account_until, now = _text(reply[4]), float(_text(reply[5]))
        effective = capacity - int(external)
        slots = SlotsState(
            capacity=capacity,
            effective_capacity=effective,
            external=int(external),
            in_use=held,
            bound=held,
            available=max(0, effective - held),
            waiters=int(waiters),
            next_expiry_in=float(next_expiry) - now if next_expiry else None,
        )
        windows: dict[str, LimiterState] = {}
        for index, (name, limit) in enumerate(limits.items()):
            tokens, cooling, queued, blocked, soonest = reply[6 + 5 * index : 11 + 5 * index]
            blocked_for = max(0.0, float(_text(blocked)) - now) if _text(blocked) else 0.0
            windows[name] = LimiterState(
                name=name,
                calls=limit.calls,
                period=limit.period,
                available=0 if blocked_for > 0 else max(0, limit.calls - int(tokens)),
                in_use=int(tokens) - int(cooling),
                cooling=int(cooling),
                waiters=int(queued),
                blocked_for=blocked_for,
                next_return_in=float(_text(soonest)) - now if _text(soonest) else None,
            )
        blocked_for = 0.0
        if account_until:
            until = float(account_until)
            blocked_for = math.inf if until >= _FOREVER else max(0.0, until - now)
        orders, successes = await self.success_counts()
        return StoreSnapshot(windows, slots, orders, successes, blocked_for)

    def _beat_call(self) -> tuple[str, list[str], list[object]]:
        ttl = _ms(self.known_for + 60)
        return (
            _scripts.HEARTBEAT,
            self._flights_keys[1:2],
            [self._owner, repr(self.backend.lease), ttl],
        )

    def _beat(self) -> None:
        self.backend._connections.run_sync(*self._beat_call())

    async def aclose(self) -> None:
        """Stop renewing this owner's lease (the connections are the backend's)."""
        self._heartbeat.stop()

    # -- the journal of open numbers --

    async def journal_put(self, activation_id: str, record: str, expire_at: float) -> None:
        args: list[object] = [
            activation_id,
            record,
            repr(expire_at),
            self._owner,
            repr(self.backend.lease),
            _ms(JOURNAL_KEEP + 7200.0),
            _ms(self.known_for + 60),
        ]
        keys = [*self._journal_keys, self._flights_keys[1]]
        await self._run(_scripts.JOURNAL_PUT, keys, args)
        self._heartbeat.start()

    async def journal_update(self, records: Mapping[str, tuple[str, float]]) -> None:
        args: list[object] = []
        for activation_id, (record, expire_at) in records.items():
            args += [activation_id, record, repr(expire_at)]
        if args:
            keys = [self._journal_keys[0], self._journal_keys[2]]
            await self._run(_scripts.JOURNAL_UPDATE, keys, args)

    async def journal_remove(self, activation_ids: Sequence[str]) -> None:
        if activation_ids:
            await self._run(_scripts.JOURNAL_REMOVE, self._journal_keys, list(activation_ids))

    async def journal_list(self) -> list[JournalEntry]:
        keys = [*self._journal_keys, self._flights_keys[1]]
        reply = await self._run(_scripts.JOURNAL_LIST, keys, [repr(JOURNAL_KEEP)])
        entries = []
        for i in range(0, len(reply), 4):
            activation_id, record, owner = map(_text, reply[i : i + 3])
            alive = owner == self._owner or bool(int(reply[i + 3]))
            entries.append(JournalEntry(activation_id, record, owner, alive))
        return entries

    async def journal_take(self, activation_ids: Sequence[str]) -> list[bool]:
        if not activation_ids:
            return []
        keys = [self._journal_keys[0], self._journal_keys[1], self._flights_keys[1]]
        args = [self._owner, repr(self.backend.lease), _ms(self.known_for + 60)]
        reply = await self._run(_scripts.JOURNAL_TAKE, keys, [*args, *activation_ids])
        self._heartbeat.start()
        return [bool(int(x)) for x in reply]

    # -- spending --

    def _spend_keys(self) -> list[str]:
        return [self._key("spend", "at"), self._key("spend", "cents")]

    async def spend_take(self, cents: int, period: float, price: int) -> SpendTake:
        async def shared() -> SpendTake:
            await self._settle()  # a release or bind Redis missed comes first
            entry = "spend:" + uuid.uuid4().hex
            args = [cents, repr(period), price, entry, repr(SPEND_KEPT), _ms(SPEND_KEPT + 60)]
            reply = await self._run(_scripts.SPEND_TAKE, self._spend_keys(), args)
            total = int(reply[1])
            if int(reply[0]):
                return SpendTake(entry, total, None)
            now = float(_text(reply[2]))
            rest = reply[3:]
            counted = [(float(_text(rest[i])), int(rest[i + 1])) for i in range(0, len(rest), 2)]
            return SpendTake(None, total, spend_room_in(counted, price, cents, period, now))

        async def local() -> SpendTake:
            taken = await self._local.spend_take(cents, period, price)
            return taken._replace(entry=None if taken.entry is None else "local:" + taken.entry)

        return await self._or_local("the spend limit", shared, local)

    async def spend_bind(self, entry: str, activation_id: str, price: int) -> None:
        if entry.startswith("local:"):
            await self._local.spend_bind(entry.removeprefix("local:"), activation_id, price)
            return
        args = [entry, activation_id, price, _ms(SPEND_KEPT + 60)]
        await self._owe(_scripts.SPEND_BIND, self._spend_keys(), args)

    async def spend_release(self, name: str) -> None:
        await self._local.spend_release(name.removeprefix("local:"))
        if not name.startswith("local:"):
            await self._owe(_scripts.SPEND_RELEASE, self._spend_keys(), [name])

    async def spend_counted(self, period: float) -> int:
        async def shared() -> int:
            reply = await self._run(
                _scripts.SPEND_COUNTED, self._spend_keys(), [repr(period), repr(SPEND_KEPT)]
            )
            return int(reply)

        async def local() -> int:
            return await self._local.spend_counted(period)

        return await self._or_local("the spend limit", shared, local)

    # -- end of spending --
