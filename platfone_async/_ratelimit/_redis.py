"""The Redis backend: one key's limits shared by every process and host of a fleet.

``AsyncPlatfone(..., limits_backend=RedisBackend.from_url("redis://..."))`` (or the
``PLATFONE_REDIS_URL`` environment variable) keeps, in Redis, what the in-memory backend
keeps in the process: each endpoint's rolling window, the activation slots, a server
429's pause, the account block, the success-rate counts and the ids handed out to
callers (for reconciliation). Each operation is one atomic Lua script (``_scripts``) on
Redis's own clock, so hosts whose clocks disagree share one window.

Within a process the waiters of one resource queue first come, first served (the same
:class:`~platfone_async._ratelimit._wait.WaitQueue` as in memory) and only the head asks
Redis, sleeping as long as the script says (at most ``max_sleep``, its heartbeat).

redis-py's asyncio client serves asyncio (one client per event loop: a sync ``Platfone``
runs its own); under trio, which redis-py does not support, its sync client runs in a
worker thread. When Redis cannot be reached or fails, an operation raises
:class:`RateLimitBackendError` before any request leaves - or, with
``on_backend_error="local"``, falls back to in-process limits with a WARNING.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
import uuid
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs

from .._clock import Clock
from .._errors import AccountBlockedError, RateLimitBackendError
from . import _scripts
from ._state import LimiterState, SlotsState
from ._wait import ErrorSource, Waiter, WaitQueue, logger, make_error
from ._window import SlidingWindowLimiter, default_margin

__all__ = [
    "OnBackendError",
    "RedisBackend",
    "RedisFleet",
    "RedisLimiter",
    "RedisSlotToken",
    "blocked_error",
]

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
                    else redis.asyncio.Redis.from_url(
                        self._url,
                        socket_timeout=self._timeout,
                        socket_connect_timeout=self._timeout,
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
        """Run ``script`` atomically; :class:`RateLimitBackendError` when Redis fails."""
        import redis.exceptions

        try:
            loop = _running_asyncio_loop()
            if loop is not None:
                client = self._async_client(loop)
                return await self._script(client, script)(keys=keys, args=args, client=client)
            sync = self._sync_client()
            registered = self._script(sync, script)
            return await anyio.to_thread.run_sync(
                lambda: registered(keys=keys, args=args, client=sync)
            )
        except (redis.exceptions.RedisError, OSError) as exc:
            raise RateLimitBackendError(
                f"the Redis limits backend failed ({type(exc).__name__}: {exc}); "
                "no request was sent"
            ) from exc

    async def aclose(self) -> None:
        loop = _running_asyncio_loop()
        with self._lock:
            client = self._async.pop(loop, None) if loop is not None else None
            sync, self._sync = self._sync, None
        if client is not None and client is not self._given:
            await client.aclose()
        if sync is not None and sync is not self._given:
            sync.close()


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
    """Limits shared through Redis by every process and host on one API key.

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

    # -- the backend seam --

    def _key(self, scope: str, *parts: str) -> str:
        return ":".join([self.prefix, "{" + scope + "}", *parts])

    def create_limiter(self, scope: str, name: str, limit: Any, clock: Clock) -> RedisLimiter:
        return RedisLimiter(self, scope, name, limit.calls, limit.period, clock)

    def create_fleet(self, scope: str, capacity: int, clock: Clock) -> RedisFleet:
        return RedisFleet(self, scope, capacity, clock)

    async def run(self, script: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        return await self._connections.run(script, keys, args)

    def fall_back(self, what: str, error: RateLimitBackendError) -> bool:
        """Whether to go on with in-process limits after ``error`` (logged once per outage)."""
        if self.on_backend_error != "local":
            return False
        logger.warning("%s: %s; using in-process limits meanwhile", what, error)
        return True


#: A change to the slots: ("remove", member, None, None) or ("bind", member, id, expire_at).
_SlotOperation = tuple[str, str, str | None, float | None]


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


class RedisLimiter:
    """One endpoint's rolling window in Redis (see the module doc)."""

    def __init__(
        self,
        backend: RedisBackend,
        scope: str,
        name: str,
        calls: int,
        period: float,
        clock: Clock,
    ) -> None:
        self.name = name
        self.calls = calls
        self.period = float(period)
        self._backend = backend
        self._clock = clock
        self._hold = self.period + default_margin(self.period)
        self._lease = self._hold + backend.max_request_time
        self._stale = 3 * backend.max_sleep + 5.0
        self._ttl = _ms(self._lease + self._hold + 60.0)
        self._keys = [backend._key(scope, "w", name, part) for part in ("tokens", "q", "seen")]
        self._block_key = backend._key(scope, "w", name, "block")
        self._waiter_id = uuid.uuid4().hex
        self._queue = WaitQueue()
        self._members: dict[Waiter, str] = {}  # granted waiters -> their token in Redis
        self._owed: list[str] = []  # spent tokens Redis could not be told about yet
        self._lock = threading.Lock()
        # The in-process stand-in for on_backend_error="local"; it also keeps a 429's
        # block, which the fleet learns through share_block().
        self._local = SlidingWindowLimiter(calls, period, clock=clock, name=name)

    def __repr__(self) -> str:
        return f"<RedisLimiter {self.name!r} {self.calls}/{self.period:g}s>"

    @property
    def keys(self) -> tuple[str, str, str, str]:
        """The Redis keys of this window: tokens, queue, seen, block."""
        return (*self._keys, self._block_key)  # type: ignore[return-value]

    @property
    def hold(self) -> float:
        return self._hold

    def acquire(self) -> _Permit:
        return _Permit(self)

    def block_until(self, deadline: float) -> None:
        """Close the window here until ``deadline`` (``clock.monotonic()``); the fleet
        learns it through :meth:`share_block`."""
        self._local.block_until(deadline)

    async def share_block(self, seconds: float) -> None:
        """Close the window for every process of the fleet for ``seconds``."""
        await self._backend.run(_scripts.WINDOW_BLOCK, [self._block_key], [repr(seconds)])

    def interrupt(self, error: ErrorSource) -> None:
        with self._lock:
            self._queue.interrupt(error)
        self._local.interrupt(error)

    def state(self) -> LimiterState:
        """This process's view (waiters here); the fleet's comes from ``KeyLimits.state()``."""
        local = self._local.state()
        with self._lock:
            waiters = self._queue.live
        return attrs.evolve(local, waiters=waiters)

    # -- acquiring --

    async def _enter(self) -> str:
        """Wait for a token (FIFO in this process); return its member id in Redis."""
        waiter = Waiter()
        with self._lock:
            self._queue.push(waiter)
        try:
            while True:
                with self._lock:
                    if waiter.error is not None:
                        raise make_error(waiter.error)
                    if waiter.granted:
                        break
                    head = self._queue.head() is waiter
                    want = self._queue.live
                if not head:
                    await waiter.park(self._clock, None)
                    continue
                wait = await self._try(want)
                if wait is not None:
                    await waiter.park(self._clock, wait)
            # Cancelled while the grant was on its way: the token goes back unspent.
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            with self._lock:
                member = self._members.pop(waiter, None)
                if member is None:
                    self._queue.abandon(waiter)
                self._queue.wake_head()
                last = self._queue.live == 0
            with anyio.CancelScope(shield=True), contextlib.suppress(RateLimitBackendError):
                if member is not None:
                    await self._backend.run(_scripts.REMOVE, self._keys[:1], [member])
                if last:
                    await self._backend.run(_scripts.LEAVE_QUEUE, self._keys[1:], [self._waiter_id])
            raise
        with self._lock:
            return self._members.pop(waiter)

    async def _try(self, want: int) -> float | None:
        """Ask Redis once for ``want`` tokens and hand those granted to the first waiters
        in the queue (the caller, its head, first). None when some were granted, else
        how long to sleep."""
        await self._return_owed()
        base = uuid.uuid4().hex
        args = [
            self.calls,
            repr(self._lease),
            base,
            self._waiter_id,
            repr(self._stale),
            repr(self._hold),
            self._ttl,
            want,
            repr(self._hold),
        ]
        with anyio.CancelScope(shield=True):
            granted, wait = await self._backend.run(
                _scripts.WINDOW_ACQUIRE, [*self._keys, self._block_key], args
            )
        granted = int(granted)
        if granted:
            unused: list[str] = []
            with self._lock:
                for index in range(1, granted + 1):
                    member = f"{base}:{index}"
                    taker = self._queue.grant_head()
                    if taker is None:
                        unused.append(member)  # its waiter left meanwhile
                    else:
                        self._members[taker] = member
                self._queue.wake_head()
            if unused:
                with anyio.CancelScope(shield=True), contextlib.suppress(RateLimitBackendError):
                    for member in unused:
                        await self._backend.run(_scripts.REMOVE, self._keys[:1], [member])
            return None
        seconds = float(wait)
        if seconds < 0:
            return _CLAIMING  # tokens are free, held for an older waiter elsewhere
        return min(max(seconds, 0.001), self._backend.max_sleep)

    async def _exit(self, member: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self._return(member)
            except RateLimitBackendError as exc:
                # The token stays "in flight" (it comes back by itself after its lease);
                # it is stamped again, later than it should be, never sooner, once Redis
                # answers the next acquire.
                with self._lock:
                    self._owed.append(member)
                logger.warning("rate limit %s: could not return a token: %s", self.name, exc)

    async def _return(self, member: str) -> None:
        await self._backend.run(
            _scripts.WINDOW_RELEASE, self._keys[:1], [member, repr(self._hold), self._ttl]
        )

    async def _return_owed(self) -> None:
        while True:
            with self._lock:
                if not self._owed:
                    return
                member = self._owed[0]
            await self._return(member)
            with self._lock:
                if self._owed and self._owed[0] == member:
                    self._owed.pop(0)


class _Permit:
    """One token of a :class:`RedisLimiter` (or of its in-process fallback)."""

    __slots__ = ("_limiter", "_local", "_member")

    def __init__(self, limiter: RedisLimiter) -> None:
        self._limiter = limiter
        self._member: str | None = None
        self._local: Any = None

    async def __aenter__(self) -> None:
        limiter = self._limiter
        try:
            self._member = await limiter._enter()
        except RateLimitBackendError as exc:
            if not limiter._backend.fall_back(f"rate limit {limiter.name}", exc):
                raise
            self._local = limiter._local.acquire()
            await self._local.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._local is not None:
            await self._local.__aexit__(exc_type, exc, tb)
        elif self._member is not None:
            await self._limiter._exit(self._member)


class RedisSlotToken:
    """One activation slot held in Redis: an order's, then its activation's."""

    __slots__ = ("activation_id", "expire_at", "member", "released")

    def __init__(self, member: str) -> None:
        self.member = member
        self.activation_id: str | None = None
        self.expire_at: float | None = None
        self.released = False

    def __repr__(self) -> str:
        return f"<RedisSlotToken activation_id={self.activation_id!r}>"


class RedisFleet:
    """What one key keeps in Redis besides the windows: slots, blocks, counts, ids."""

    #: How long an order in flight holds its slot if its process dies: an activation's life.
    pending_hold = 30 * 60.0
    #: While the server says the account is full, one more order may probe this often.
    probe_interval = 10.0
    #: The success-rate window, and how long handed-out ids are remembered.
    window = 86_400.0
    known_for = 3_600.0
    #: How long an order in flight stays visible to the fleet if its process dies
    #: before it lands (a live order ends its flight when answered or failed).
    flight_hold = 600.0

    def __init__(self, backend: RedisBackend, scope: str, capacity: int, clock: Clock) -> None:
        self.backend = backend
        self.capacity = capacity
        self.expiry_grace = backend.slot_grace
        self._clock = clock
        key = backend._key
        self._slot_keys = [key(scope, "slots", part) for part in ("held", "q", "seen", "ext")]
        self._account_key = key(scope, "account")
        self._success_keys = [key(scope, "success", "orders"), key(scope, "success", "sms")]
        self._known_key = key(scope, "known")
        self._flights_key = key(scope, "flights")
        self._waiter_id = uuid.uuid4().hex
        self._stale = 3 * backend.max_sleep + 5.0
        self._ttl = _ms(self.pending_hold + 3600.0)
        self._queue = WaitQueue()
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[bool, float | None]] = {}
        self._sms_shared: set[str] = set()
        self._owed: list[_SlotOperation] = []  # slot changes Redis missed, in order

    # -- slots --

    async def acquire_slot(self, timeout: float | None) -> RedisSlotToken:
        """A slot under the fleet's active-activations limit (FIFO here, oldest first
        across processes); TimeoutError after ``timeout`` clock seconds."""
        clock = self._clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        member = "order:" + uuid.uuid4().hex
        waiter = Waiter()
        with self._lock:
            self._queue.push(waiter)
        try:
            while True:
                with self._lock:
                    if waiter.error is not None:
                        raise make_error(waiter.error)
                    head = self._queue.head() is waiter
                now = clock.monotonic()
                if deadline is not None and now >= deadline and not head:
                    raise TimeoutError("no free activation slot in time")
                delay: float | None = None
                if head:
                    wait = await self._try_slot(member)
                    if wait is None:
                        break
                    if deadline is not None and clock.monotonic() >= deadline:
                        raise TimeoutError("no free activation slot in time")
                    delay = wait
                if deadline is not None:
                    remaining = deadline - clock.monotonic()
                    delay = remaining if delay is None else min(delay, remaining)
                await waiter.park(clock, delay)
        except BaseException:
            with self._lock:
                self._queue.abandon(waiter)
                self._queue.wake_head()
                last = self._queue.live == 0
            if last:
                with anyio.CancelScope(shield=True), contextlib.suppress(RateLimitBackendError):
                    await self.backend.run(
                        _scripts.LEAVE_QUEUE, self._slot_keys[1:3], [self._waiter_id]
                    )
            raise
        with self._lock:
            self._queue.grant_head()
            self._queue.wake_head()
        return RedisSlotToken(member)

    async def _try_slot(self, member: str) -> float | None:
        await self._settle_owed()
        args = [
            self.capacity,
            member,
            repr(self.pending_hold),
            self._waiter_id,
            repr(self._stale),
            repr(self.expiry_grace),
            self._ttl,
            repr(self.probe_interval),
        ]
        with anyio.CancelScope(shield=True):
            reply = await self.backend.run(
                _scripts.SLOTS_ACQUIRE, [*self._slot_keys, self._account_key], args
            )
        status = int(reply[0])
        if status == -1:
            raise blocked_error(_text(reply[2]), float(reply[1]))
        if status == 1:
            try:
                await anyio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                with anyio.CancelScope(shield=True), contextlib.suppress(RateLimitBackendError):
                    await self.release(RedisSlotToken(member))
                raise
            return None
        seconds = float(reply[1])
        if seconds < 0:
            return _CLAIMING
        return min(max(seconds, 0.001), self.backend.max_sleep)

    async def bind(
        self, token: RedisSlotToken, activation_id: str, expire_at: float | None
    ) -> None:
        """Tie ``token`` to the activation its order opened (expiry in Unix seconds)."""
        if token.released:
            raise RuntimeError("this activation slot was already released")
        member = token.member
        token.member = token.activation_id = activation_id
        token.expire_at = expire_at
        await self._owe(("bind", member, activation_id, expire_at))
        self._wake_local()

    async def release(self, token: RedisSlotToken) -> None:
        """Give ``token`` back (idempotent)."""
        if token.released:
            return
        token.released = True
        await self._owe(("remove", token.member, None, None))
        self._wake_local()

    async def observe(self, activation_id: str, *, ended: bool, expire_at: float | None) -> None:
        """An activation's state was seen: free its slot when it ended, move its expiry."""
        seen = (ended, expire_at)
        if self._seen.get(activation_id) == seen:
            return  # nothing new: no round trip per poll
        if ended:
            self._seen.pop(activation_id, None)
            await self._owe(("remove", activation_id, None, None))
            self._wake_local()
            return
        await self.backend.run(
            _scripts.SLOTS_OBSERVE,
            self._slot_keys[:1],
            [activation_id, "1" if ended else "0", "" if expire_at is None else repr(expire_at)],
        )
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[activation_id] = seen

    async def server_full(self, token: RedisSlotToken | None) -> None:
        """The server refused an order with TooManyActivations (``token``: its slot)."""
        member = "" if token is None else token.member
        if token is not None:
            token.released = True
            await self._owe(("remove", member, None, None))
        await self.backend.run(
            _scripts.SLOTS_SERVER_FULL,
            [self._slot_keys[0], self._slot_keys[3]],
            [member, self.capacity, repr(self.probe_interval), self._ttl],
        )

    def interrupt(self, error: ErrorSource) -> None:
        with self._lock:
            self._queue.interrupt(error)

    async def _owe(self, operation: _SlotOperation) -> None:
        """Apply a change to the slots; if Redis fails, keep it and apply it (with any
        others owed) before the next slot is taken - a slot is never lost to an outage."""
        with self._lock:
            self._owed.append(operation)
        await self._settle_owed()

    async def _settle_owed(self) -> None:
        while True:
            with self._lock:
                if not self._owed:
                    return
                kind, member, activation_id, expire_at = self._owed[0]
            if kind == "remove":
                await self.backend.run(_scripts.REMOVE, self._slot_keys[:1], [member])
            else:
                await self.backend.run(
                    _scripts.SLOTS_BIND,
                    self._slot_keys[:1],
                    [
                        member,
                        activation_id or "",
                        "" if expire_at is None else repr(expire_at),
                        repr(self.pending_hold),
                        self._ttl,
                    ],
                )
            with self._lock:
                if self._owed and self._owed[0] == (kind, member, activation_id, expire_at):
                    self._owed.pop(0)

    def _wake_local(self) -> None:
        with self._lock:
            self._queue.wake_head()

    # -- the account block --

    async def block_account(self, message: str, until: float | None) -> None:
        ttl = 86_400.0 * 30 if until is None else max(until - self._clock.time(), 1.0)
        await self.backend.run(
            _scripts.ACCOUNT_BLOCK,
            [self._account_key],
            ["set", repr(_FOREVER if until is None else until), message, _ms(ttl)],
        )

    async def unblock_account(self) -> None:
        await self.backend.run(_scripts.ACCOUNT_BLOCK, [self._account_key], ["clear"])

    async def account_block(self) -> tuple[str, float] | None:
        """``(message, until)`` while some process of the fleet saw the account blocked."""
        reply = await self.backend.run(_scripts.ACCOUNT_READ, [self._account_key], [])
        if not reply:
            return None
        return _text(reply[1]), float(reply[0])

    # -- success rate --

    async def record_order(self, activation_id: str) -> None:
        await self.backend.run(
            _scripts.SUCCESS_RECORD,
            self._success_keys,
            ["order", activation_id, repr(self.window), _ms(self.window + 60)],
        )

    async def record_sms(self, activation_id: str) -> None:
        if activation_id in self._sms_shared:
            return  # counted already: no round trip per poll
        if len(self._sms_shared) > 10_000:
            self._sms_shared.clear()
        self._sms_shared.add(activation_id)
        await self.backend.run(
            _scripts.SUCCESS_RECORD,
            self._success_keys,
            ["sms", activation_id, repr(self.window), _ms(self.window + 60)],
        )

    async def success_counts(self) -> tuple[int, int]:
        orders, successes = await self.backend.run(
            _scripts.SUCCESS_COUNTS, self._success_keys, [repr(self.window)]
        )
        return int(orders), int(successes)

    # -- reconciliation --

    async def claim(self, activation_ids: Sequence[str]) -> list[bool]:
        """Claim ids as handed out by this fleet; False for an id claimed before."""
        if not activation_ids:
            return []
        reply = await self.backend.run(
            _scripts.KNOWN_CLAIM,
            [self._known_key],
            [repr(self.known_for), _ms(self.known_for + 60), *activation_ids],
        )
        return [bool(int(x)) for x in reply]

    async def known(self, activation_ids: Sequence[str]) -> set[str]:
        """The ids some process of the fleet handed out."""
        if not activation_ids:
            return set()
        reply = await self.backend.run(_scripts.KNOWN_FILTER, [self._known_key], activation_ids)
        return {aid for aid, flag in zip(activation_ids, reply, strict=True) if int(flag)}

    async def flight_start(self, offer: str) -> str:
        """An order of this process is about to leave: tell the fleet (see
        ``KeyLimits.flight_start``); the member to end it with."""
        member = f"{self._waiter_id}:{uuid.uuid4().hex}|{offer}"
        await self.backend.run(
            _scripts.WINDOW_RELEASE,  # a member that expires after flight_hold
            [self._flights_key],
            [member, repr(self.flight_hold), _ms(self.flight_hold + 60)],
        )
        return member

    async def flight_end(self, member: str) -> None:
        """The order landed (answered, its id claimed, or failed)."""
        await self.backend.run(_scripts.REMOVE, [self._flights_key], [member])

    async def flights_elsewhere(self) -> list[str]:
        """The offers of the orders other processes of the fleet have in flight."""
        reply = await self.backend.run(_scripts.FLIGHT_LIST, [self._flights_key], [])
        mine = self._waiter_id + ":"
        return [
            member.partition("|")[2] for member in map(_text, reply) if not member.startswith(mine)
        ]

    # -- dashboards --

    async def state(
        self, limiters: Sequence[RedisLimiter], local: SlotsState
    ) -> tuple[SlotsState, dict[str, LimiterState], float]:
        """The fleet's slots, windows and account block (seconds it still lasts)."""
        keys = [self._slot_keys[0], self._slot_keys[1], self._slot_keys[3], self._account_key]
        args: list[object] = [repr(self.expiry_grace)]
        for limiter in limiters:
            tokens, queue, _, block = limiter.keys
            keys += [tokens, queue, block]
            args.append(repr(limiter.hold))
        reply = await self.backend.run(_scripts.FLEET_STATE, keys, args)
        held, next_expiry, waiters, external = int(reply[0]), _text(reply[1]), reply[2], reply[3]
        account_until, now = _text(reply[4]), float(reply[5])
        effective = self.capacity - int(external)
        slots = SlotsState(
            capacity=self.capacity,
            effective_capacity=effective,
            external=int(external),
            in_use=held,
            bound=held,
            available=max(0, effective - held),
            waiters=int(waiters) + local.waiters,
            next_expiry_in=float(next_expiry) - now if next_expiry else None,
        )
        windows: dict[str, LimiterState] = {}
        for index, limiter in enumerate(limiters):
            tokens, cooling, queued, blocked, soonest = reply[6 + 5 * index : 11 + 5 * index]
            blocked_for = max(0.0, float(_text(blocked)) - now) if _text(blocked) else 0.0
            in_use = int(tokens) - int(cooling)
            windows[limiter.name] = LimiterState(
                name=limiter.name,
                calls=limiter.calls,
                period=limiter.period,
                available=0 if blocked_for > 0 else max(0, limiter.calls - int(tokens)),
                in_use=in_use,
                cooling=int(cooling),
                waiters=int(queued) + limiter.state().waiters,
                blocked_for=blocked_for,
                next_return_in=float(_text(soonest)) - now if _text(soonest) else None,
            )
        blocked_for = 0.0
        if account_until:
            until = float(account_until)
            blocked_for = math.inf if until >= _FOREVER else max(0.0, until - now)
        return slots, windows, blocked_for


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def blocked_error(message: str, until: float) -> AccountBlockedError:
    reset_at = None if until >= _FOREVER else dt.datetime.fromtimestamp(until, dt.timezone.utc)
    return AccountBlockedError(
        message or "the account is blocked (low SMS success rate), seen by another worker",
        status_code=429,
        error_name="LowSuccessRateException",
        reset_at=reset_at,
    )
