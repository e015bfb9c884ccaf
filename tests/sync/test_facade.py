"""``Platfone``, the sync facade, against the emulator in-process: plain sync tests."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import trio

from platfone_async import (
    Activation,
    ActivationStatus,
    InvalidParameterError,
    NotFoundError,
    Platfone,
    RateLimit,
    SessionOutcome,
)
from platfone_async.testing import PlatfoneEmulator

AID = "64a1c0e8d2a1f9b7e45d3b8e"

pytestmark = pytest.mark.emulator(
    clock=None, rate_limits=None
)  # real time: the loop runs in a thread


def _client(emulator: PlatfoneEmulator, **kwargs: object) -> Platfone:
    return Platfone(
        emulator.api_key,
        base_url=emulator.base_url,
        http_client=emulator.http_client(),
        rate_limits=None,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def client(emulator: PlatfoneEmulator) -> Iterator[Platfone]:
    """A Platfone talking to the emulator in-process (ASGI), closed after the test."""
    with _client(emulator) as client:
        yield client


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "Platfone-loop"]


def test_calls_return_what_the_async_client_returns(
    client: Platfone, emulator: PlatfoneEmulator
) -> None:
    """Blocking calls give the same models the async client gives."""
    balance = client.get_balance()
    assert emulator.balance()["total"] == balance.total
    activation = client.create_activation("telegram", "uk")
    assert isinstance(activation, Activation)
    assert activation == client.get_activation(activation.activation_id)


def test_errors_propagate_with_their_own_class(client: Platfone) -> None:
    """API errors and argument errors come out exactly as the async client raises them."""
    with pytest.raises(NotFoundError) as info:
        client.get_activation(AID)
    assert 404 == info.value.status_code
    with pytest.raises(InvalidParameterError):
        client.get_activation_history(limit=0)


def test_repr_never_shows_the_api_key(emulator: PlatfoneEmulator) -> None:
    """Before start, while running and after close, the key stays out of the repr."""
    client = _client(emulator)
    reprs = [repr(client)]
    client.get_balance()
    reprs.append(repr(client))
    client.close()
    reprs.append(repr(client))
    assert ["<Platfone (not started)>", "<Platfone (closed)>"] == [reprs[0], reprs[2]]
    assert f"<Platfone base_url={emulator.base_url!r}>" == reprs[1]
    assert not any(emulator.api_key in text for text in reprs)


def test_a_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key and no ``PLATFONE_API_KEY``: ``Platfone()`` raises as ``AsyncPlatfone()`` does,
    and starts no thread."""
    monkeypatch.delenv("PLATFONE_API_KEY", raising=False)
    with pytest.raises(InvalidParameterError, match="PLATFONE_API_KEY"):
        Platfone()
    with pytest.raises(InvalidParameterError, match="single-line"):
        Platfone("key\nInjected: header")
    assert [] == _loop_threads()


def test_the_key_is_read_from_the_environment_at_construction(
    monkeypatch: pytest.MonkeyPatch, emulator: PlatfoneEmulator
) -> None:
    """``PLATFONE_API_KEY`` is read when the client is built; unsetting it later changes
    nothing."""
    monkeypatch.setenv("PLATFONE_API_KEY", emulator.api_key)
    client = Platfone(base_url=emulator.base_url, http_client=emulator.http_client())
    monkeypatch.delenv("PLATFONE_API_KEY")
    with client:
        assert client.get_balance().total > 0


def test_the_key_checked_at_construction_is_not_in_any_repr() -> None:
    """The key held for the first use is in a closure, whose repr does not show it."""
    client = Platfone("sk-never-shown-0123456789")
    held = client._runtime._factory
    assert "sk-never-shown" not in repr(held) + repr(client)
    client.close()


def test_another_constructor_error_is_reported_on_first_use() -> None:
    """An argument the async constructor rejects surfaces on the first call, and no thread
    is left."""
    client = Platfone("key", max_active_activations=0)
    with pytest.raises(InvalidParameterError, match="max_active_activations"):
        client.get_balance()
    assert [] == _loop_threads()


def test_iterators_walk_every_page(client: Platfone) -> None:
    """An async iterator method is a plain iterator, across pages."""
    ids = {client.create_activation("telegram", "uk").activation_id for _ in range(3)}
    assert ids == {a.activation_id for a in client.iter_activation_history(limit=1)}


def test_leaving_an_iterator_early_leaves_nothing_running(client: Platfone) -> None:
    """`break` closes the async generator on the loop; no task is left behind."""
    for _ in range(3):
        client.create_activation("telegram", "uk")
    for _ in client.iter_activation_history(limit=1):
        break
    keeper = client._runtime._keeper._aio_task  # the client lives in it until closed
    assert [] == [t for t in client._call_sync(_other_bridge_tasks) if t is not keeper]


def _other_bridge_tasks(_: object) -> list[asyncio.Task[object]]:
    """The facade's tasks on the loop, other than the one running this."""
    return [
        task
        for task in asyncio.all_tasks()
        if task is not asyncio.current_task()
        and getattr(task.get_coro(), "__qualname__", "") == "_Task._main"
    ]


def test_session_settles_the_activation_on_leaving(
    client: Platfone, emulator: PlatfoneEmulator
) -> None:
    """``with client.activation(...)`` holds a number; its handle's methods block."""
    with client.activation("telegram", "uk") as session:
        activation_id = session.activation.activation_id
        emulator.deliver_sms(activation_id, "424242")
        assert "424242" == session.wait_for_sms(timeout=30).sms_code
    assert SessionOutcome.FINALIZED == session.outcome
    assert ActivationStatus.FINALIZED == client.get_activation(activation_id).activation_status


def test_session_sees_the_exception_that_ended_the_block(
    client: Platfone, emulator: PlatfoneEmulator
) -> None:
    """An exception in the body reaches the session's exit, which still settles."""
    sessions = []

    def hold_and_fail() -> None:
        with client.activation("telegram", "uk") as session:
            sessions.append(session)
            emulator.deliver_sms(session.activation.activation_id, "1234")
            session.refresh()
            raise LookupError("the user's own error")

    with pytest.raises(LookupError, match="own error"):
        hold_and_fail()
    assert SessionOutcome.FINALIZED == sessions[0].outcome


def test_calls_from_many_threads_share_one_client(client: Platfone) -> None:
    """Concurrent calls from a thread pool all work, on one loop and one async client."""

    def call(_: int) -> tuple[int, int]:
        return client.get_balance().total, id(client.__async_target__())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(64)))
    assert 1 == len(set(results))
    assert 1 == len(_loop_threads())


def test_works_where_an_event_loop_already_runs(client: Platfone) -> None:
    """Inside a running asyncio or trio loop (as in Jupyter) the blocking calls just work."""

    async def from_asyncio() -> int:
        return client.get_balance().total

    async def from_trio() -> int:
        return client.get_balance().total

    assert asyncio.run(from_asyncio()) == trio.run(from_trio)


def test_close_stops_the_loop_and_refuses_later_calls(emulator: PlatfoneEmulator) -> None:
    """``with`` closes: the loop thread ends; a later call raises RuntimeError."""
    with _client(emulator) as client:
        client.get_balance()
        assert 1 == len(_loop_threads())
    assert [] == _loop_threads()
    client.close()
    with pytest.raises(RuntimeError, match="this Platfone is closed"):
        client.get_balance()


def test_close_leaves_an_injected_http_client_open(emulator: PlatfoneEmulator) -> None:
    """As with AsyncPlatfone, an ``http_client`` passed in belongs to the caller."""
    http = emulator.http_client()
    with Platfone(emulator.api_key, base_url=emulator.base_url, http_client=http) as client:
        client.get_balance()
    assert not http.is_closed
    asyncio.run(http.aclose())


def test_close_of_a_client_never_used_starts_nothing() -> None:
    """The loop starts on first use: a client closed unused never had a thread."""
    client = Platfone("key-never-used")
    client.close()
    assert [] == _loop_threads()


def test_an_unclosed_client_stops_its_loop_when_collected(emulator: PlatfoneEmulator) -> None:
    """Forgetting close() leaks no thread: garbage collection stops the loop."""
    client = _client(emulator)
    client.get_balance()
    (thread,) = _loop_threads()
    del client
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_close_closes_the_http_client_it_made() -> None:
    """Without an injected client, close() closes the one the async client created."""
    client = Platfone("key-never-sent")
    http: httpx.AsyncClient = client.__async_target__()._http.client
    client.close()
    assert http.is_closed


def test_threads_share_the_client_side_rate_limits(emulator: PlatfoneEmulator) -> None:
    """With 3 calls allowed per minute, 5 threads at once: 3 go out, 2 wait for a token
    (one limiter for all threads); close() then ends the wait of the other two."""
    api_key = emulator.add_account()  # a key of its own: limits are shared per key
    client = Platfone(
        api_key,
        base_url=emulator.base_url,
        http_client=emulator.http_client(),
        rate_limits={"get_balance": RateLimit(3, 60)},
    )
    client.get_balance()
    with ThreadPoolExecutor(5) as pool:
        calls = [pool.submit(client.get_balance) for _ in range(4)]
        try:
            deadline = time.monotonic() + 10
            while client.rate_limit_state().limiters["get_balance"].waiters < 2:
                assert time.monotonic() < deadline, "two calls should be waiting for a token"
                time.sleep(0.001)  # polls until two calls queue; costs no fixed time
            assert 3 == emulator.request_count("get_balance", api_key=api_key)
        finally:
            client.close()
        errors = [call.exception() for call in calls]
    assert [None, None] == [error for error in errors if error is None]
    assert ["this Platfone is closed"] * 2 == [str(error) for error in errors if error]
