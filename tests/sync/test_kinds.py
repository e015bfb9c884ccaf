"""The generator on a tiny async class: every kind of method gets a working sync twin.

``AsyncThing`` has what later issues add to ``AsyncPlatfone``: coroutines, async
generators, ``@asynccontextmanager`` methods yielding a handle with async methods, and
the same kinds declared only by their return annotations. Its facade is generated into a
temporary module and exercised for real.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from types import ModuleType
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from platfone_async._sync import _codegen
from tests.sync.test_twins import _twin_map, assert_twins

Log = list[tuple[str, object, str]]


def _here(log: Log, event: str) -> None:
    """Record an event with the task and thread it happened in."""
    log.append((event, anyio.get_current_task().id, threading.current_thread().name))


class Handle:
    """A handle with async methods, like the session ``activation()`` yields."""

    name: str

    def __init__(self, name: str, log: Log) -> None:
        self.name = name
        self._log = log

    async def shout(self, suffix: str = "!") -> str:
        """The name, loudly."""
        await anyio.lowlevel.checkpoint()
        return self.name.upper() + suffix

    async def letters(self) -> AsyncGenerator[str, None]:
        """Each letter of the name."""
        for letter in self.name:
            await anyio.lowlevel.checkpoint()
            yield letter


class AsyncThing:
    """A fake async client."""

    def __init__(self, greeting: str = "hello", *, log: Log | None = None) -> None:
        self._greeting = greeting
        self.log: Log = log if log is not None else []

    @property
    def greeting(self) -> str:
        """How it greets."""
        return self._greeting

    async def aclose(self) -> None:
        """Let go of everything."""
        _here(self.log, "aclose")

    async def greet(self, name: str, /, *, punctuation: str = ".") -> str:
        """Greet ``name``.

        ``async with AsyncThing() as t: print(await t.greet("bob"))`` greets Bob; call
        ``await t.aclose()`` when not in a block, and ``async for`` over an async iterator.
        """
        await anyio.lowlevel.checkpoint()
        return f"{self._greeting} {name}{punctuation}"

    async def fail(self) -> None:
        """Always raises LookupError."""
        await anyio.lowlevel.checkpoint()
        raise LookupError("nothing here")

    async def count(self, n: int) -> AsyncIterator[int]:
        """0 .. n-1, inside a cancel scope that spans every yield."""
        with anyio.CancelScope():
            try:
                for i in range(n):
                    _here(self.log, f"yield {i}")
                    await anyio.lowlevel.checkpoint()
                    yield i
            finally:
                _here(self.log, "count closed")

    def count_plain(self, n: int) -> AsyncIterator[int]:
        """The same, from a plain method annotated to return an async iterator."""
        return self.count(n)

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[Handle]:
        """Hold a handle for the block, inside a cancel scope that spans the yield."""
        with anyio.CancelScope():
            _here(self.log, "enter")
            try:
                yield Handle(name, self.log)
            except BaseException as exc:
                _here(self.log, f"exit with {type(exc).__name__}")
                raise
            _here(self.log, "exit")

    def hold_plain(self, name: str) -> AbstractAsyncContextManager[Handle]:
        """The same, from a plain method annotated to return an async context manager."""
        return self.hold(name)

    def where(self) -> str:
        """The name of the thread this runs in."""
        return threading.current_thread().name

    async def call_back(self, twin: Any) -> str:
        """Calls the sync twin from inside the loop."""
        return str(twin.where())


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The facade generated for AsyncThing, imported as module ``fake_sync``."""
    path = tmp_path_factory.mktemp("generated") / "fake_sync.py"
    path.write_text(_codegen.render(AsyncThing, output_module="fake_sync", output_path=path))
    spec = importlib.util.spec_from_file_location("fake_sync", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_sync"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["fake_sync"]


@pytest.fixture
def thing(fake: ModuleType) -> Iterator[Any]:
    """A ``Thing`` (the generated twin of AsyncThing), closed after the test."""
    with fake.Thing("hi") as client:
        yield client


def test_generated_classes_mirror_every_kind(fake: ModuleType) -> None:
    """Thing and SyncHandle have identical signatures, mapped returns and docstrings."""
    twins = _twin_map(fake)
    assert {AsyncThing: fake.Thing, Handle: fake.SyncHandle} == twins
    assert_twins(AsyncThing, fake.Thing, twins)
    assert_twins(Handle, fake.SyncHandle, twins)


def test_docstrings_are_told_in_sync_terms(fake: ModuleType) -> None:
    """The generator rewrites an async docstring for the blocking twin, word by word."""
    expected = (
        "Greet ``name``.\n\n"
        '``with AsyncThing() as t: print(t.greet("bob"))`` greets Bob; call\n'
        "``t.close()`` when not in a block, and ``for`` over an iterator."
    )
    assert expected == inspect.getdoc(fake.Thing.greet)


def test_coroutine_method_blocks_and_returns(thing: Any) -> None:
    """A coroutine method becomes a plain call with the same arguments."""
    assert "hi bob!" == thing.greet("bob", punctuation="!")
    assert "hi" == thing.greeting


def test_exception_propagates_with_its_class_and_origin(thing: Any) -> None:
    """The async method's exception comes out as is; its traceback ends where it was raised."""
    with pytest.raises(LookupError, match="nothing here") as info:
        thing.fail()
    assert "fail" == info.traceback[-1].name


def test_async_generators_become_iterators(thing: Any) -> None:
    """Async generator functions and methods annotated AsyncIterator both iterate."""
    assert [0, 1, 2] == list(thing.count(3))
    assert [0, 1] == list(thing.count_plain(2))


def test_leaving_a_loop_early_closes_the_generator_in_its_own_task(thing: Any) -> None:
    """`break` closes the async generator on the loop, in the task that ran it."""
    log: Log = thing.__async_target__().log
    for i in thing.count(10):
        if i == 1:
            break
    events = [event for event, _, _ in log]
    assert ["yield 0", "yield 1", "count closed"] == events
    assert 1 == len({task for _, task, _ in log})
    assert {"Thing-loop"} == {thread for _, _, thread in log}


def test_context_manager_yields_a_sync_handle(fake: ModuleType, thing: Any) -> None:
    """An async context manager becomes a context manager; its handle's methods block."""
    log: Log = thing.__async_target__().log
    with thing.hold("ada") as handle:
        assert isinstance(handle, fake.SyncHandle)
        assert "ada" == handle.name
        assert "ADA?" == handle.shout("?")
        assert ["a", "d", "a"] == list(handle.letters())
    assert ["enter", "exit"] == [event for event, _, _ in log]
    assert 1 == len({task for _, task, _ in log})


def test_annotated_context_manager_method_works_too(fake: ModuleType, thing: Any) -> None:
    """A plain method annotated AbstractAsyncContextManager[T] is a context manager."""
    with thing.hold_plain("bo") as handle:
        assert isinstance(handle, fake.SyncHandle)
        assert "BO!" == handle.shout()


def test_body_exception_reaches_the_async_exit(thing: Any) -> None:
    """An exception in the ``with`` body is thrown into the async context manager."""
    log: Log = thing.__async_target__().log
    with pytest.raises(ValueError, match="boom"), thing.hold("x"):
        raise ValueError("boom")
    assert ["enter", "exit with ValueError"] == [event for event, _, _ in log]


def test_plain_method_runs_on_the_loop_thread(thing: Any) -> None:
    """A sync method of the async class is called on the loop, where its state lives."""
    assert "Thing-loop" == thing.where()
    assert threading.current_thread().name != thing.where()


def test_calling_the_facade_from_its_own_loop_is_refused(thing: Any) -> None:
    """A sync call from the loop thread would deadlock: it raises RuntimeError instead."""
    with pytest.raises(RuntimeError, match="its own event loop"):
        thing.call_back(thing)


def test_close_awaits_aclose_and_stops_the_loop(fake: ModuleType) -> None:
    """close() runs aclose on the loop, ends the thread, and later calls fail clearly."""
    thing = fake.Thing()
    log: Log = thing.__async_target__().log
    assert any(t.name == "Thing-loop" for t in threading.enumerate())
    thing.close()
    thing.close()
    assert ["aclose"] == [event for event, _, _ in log]
    assert not any(t.name == "Thing-loop" for t in threading.enumerate())
    with pytest.raises(RuntimeError, match="this Thing is closed"):
        thing.greet("x")
