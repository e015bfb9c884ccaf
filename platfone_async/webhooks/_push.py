"""Where webhook events meet a client's watchers: one :class:`PushHub` per client (and
its ``with_options`` copies; it lives on the client).

A ``WebhookHandler`` attached to a client pushes each verified ``activation.updated``
into the client's hub, which wakes every watcher of that activation at once; each
event of any type also marks webhooks as "flowing", and watchers poll less often while
they are (polling becomes the fallback).

Waking needs no task per watcher (ten thousand watchers is a normal load): a registered
watcher sleeps on the client's clock inside its own cancel scope - the
:class:`~platfone_async._ratelimit._wait.Waiter` of the rate limiters - and a push
cancels that scope. It works on any :class:`~platfone_async._clock.Clock`, virtual ones
included, and across threads: the receiver may run on another thread and event loop
than the watchers (a waiter woken from elsewhere is woken through its own loop).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .._clock import Clock
from .._models import Activation
from .._ratelimit._wait import Waiter

if TYPE_CHECKING:
    from .._client import AsyncPlatfone

__all__ = [
    "PUSH_FRESHNESS",
    "PUSH_INTERVAL_FACTOR",
    "PushHub",
    "Registration",
    "hub_for",
    "hub_of",
]

#: Webhooks count as flowing while the last event arrived at most this long ago...
PUSH_FRESHNESS = 300.0
#: ... and meanwhile polls are this many times ``interval`` apart.
PUSH_INTERVAL_FACTOR = 6.0


class Registration:
    """One watcher's entry in a :class:`PushHub` (created in the watcher's task)."""

    __slots__ = ("activation_id", "hub", "newest_push", "pushed", "waiter")

    def __init__(self, hub: PushHub, activation_id: str) -> None:
        self.hub = hub
        self.activation_id = activation_id
        self.waiter = Waiter()
        #: An update was pushed since the last poll began: poll now.
        self.pushed = False
        #: ``updated_at`` (Unix seconds) of the newest state pushed so far.
        self.newest_push: float | None = None


class PushHub:
    """Where webhook events meet one client's watchers.

    ``push`` wakes every watcher of the pushed activation; ``flowing`` says whether
    events arrived lately (so that watchers poll less often). Thread-safe: the receiver
    may run on another thread and event loop than the watchers.
    """

    __slots__ = ("_clock", "_lock", "_watchers", "last_event_at")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._watchers: dict[str, set[Registration]] = {}
        #: Clock time of the last event received, of any type (None: none yet).
        self.last_event_at: float | None = None

    def __repr__(self) -> str:
        return f"<PushHub watching={len(self._watchers)} last_event_at={self.last_event_at}>"

    def register(self, activation_id: str) -> Registration:
        registration = Registration(self, activation_id)
        with self._lock:
            self._watchers.setdefault(activation_id, set()).add(registration)
        return registration

    def unregister(self, registration: Registration) -> None:
        with self._lock:
            found = self._watchers.get(registration.activation_id)
            if found is not None:
                found.discard(registration)
                if not found:
                    del self._watchers[registration.activation_id]

    def note_event(self) -> None:
        """An event arrived (whatever its type): webhooks are flowing."""
        self.last_event_at = self._clock.time()

    def push(self, state: Activation) -> int:
        """Wake every watcher of ``state``'s activation; returns how many there were."""
        updated_at = state.updated_at.timestamp()
        with self._lock:
            found = list(self._watchers.get(state.activation_id, ()))
            for registration in found:
                registration.pushed = True
                newest = registration.newest_push
                registration.newest_push = updated_at if newest is None else max(newest, updated_at)
        for registration in found:
            registration.waiter.wake()
        return len(found)

    def flowing(self) -> bool:
        """Whether an event arrived within the last ``PUSH_FRESHNESS`` seconds."""
        last = self.last_event_at
        return last is not None and self._clock.time() - last <= PUSH_FRESHNESS


_hubs_lock = threading.Lock()


def hub_for(client: AsyncPlatfone) -> PushHub:
    """The client's :class:`PushHub` (shared with its ``with_options`` copies), made on
    first use."""
    shared = client._shared
    with _hubs_lock:
        if shared.push_hub is None:
            shared.push_hub = PushHub(client.clock)
        return shared.push_hub


def hub_of(client: AsyncPlatfone) -> PushHub | None:
    """The client's :class:`PushHub`, if a handler was ever attached to it or a copy."""
    return client._shared.push_hub
