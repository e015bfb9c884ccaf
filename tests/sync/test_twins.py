"""The generated facade mirrors the async classes exactly, and is fresh."""

from __future__ import annotations

import collections.abc
import contextlib
import inspect
import os
import re
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import platfone_async
from platfone_async import AsyncPlatfone, Platfone
from platfone_async._sync import _codegen
from platfone_async._sync import _facade as _sync

#: The async client imports the models it loads on first use only for type checking, so
#: its annotations resolve against the public names (and the one private snapshot), and
#: `Evidence`'s "os.PathLike[str]" against `os`.
_NAMES = {name: getattr(platfone_async, name) for name in platfone_async.__all__}
_NAMES["KeyLimitsState"] = platfone_async._ratelimit.KeyLimitsState
_NAMES["os"] = os


def _hints(value: Any) -> dict[str, Any]:
    return typing.get_type_hints(value, localns=_NAMES)


_ASYNC_ITERATORS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


def _async_kind(value: Any) -> str | None:
    """What a member of an async class is, judged independently of the generator."""
    if isinstance(value, property):
        return "property"
    if not inspect.isfunction(value):
        return None
    if inspect.iscoroutinefunction(value):
        return "call"
    if inspect.isasyncgenfunction(value):
        return "iterate"
    if inspect.isasyncgenfunction(inspect.unwrap(value)):
        return "context"
    origin = typing.get_origin(_hints(value).get("return"))
    if origin in _ASYNC_ITERATORS:
        return "iterate"
    if origin is contextlib.AbstractAsyncContextManager:
        return "context"
    return "sync"


def _expected_return(kind: str, hint: Any, twins: dict[type, type]) -> Any:
    """The sync return type the async one maps to."""
    if kind in ("call", "sync", "property"):
        return twins.get(hint, hint)
    (item, *_) = typing.get_args(hint)
    item = twins.get(item, item)
    if kind == "iterate":
        return collections.abc.Iterator[item]  # type: ignore[valid-type]
    return contextlib.AbstractContextManager[item]  # type: ignore[valid-type]


#: Words that only make sense to an async caller: a sync docstring must not use them.
_ASYNC_WORDS = re.compile(
    r"\basync\s+(with|for|def|iterator|iterable|generator|context manager)\b"
    r"|\bawait\b|\baclose\b"
)


def assert_docs_speak_sync(async_fn: Any, sync_fn: Any, name: str) -> None:
    """The twin has a docstring where the async member has one, in sync words: no
    ``async with``/``async for``/``await``/``aclose``/async iterator, and line for line
    the same text wherever the async line had no async words to translate."""
    async_doc, sync_doc = inspect.getdoc(async_fn), inspect.getdoc(sync_fn)
    assert (async_doc is None) == (sync_doc is None), f"{name}'s docstring is missing"
    if async_doc is None or sync_doc is None:
        return
    assert [] == _ASYNC_WORDS.findall(sync_doc), f"{name}'s docstring speaks async"
    async_lines, sync_lines = async_doc.splitlines(), sync_doc.splitlines()
    assert len(async_lines) == len(sync_lines), f"{name}'s docstring lost or gained lines"
    for async_line, sync_line in zip(async_lines, sync_lines, strict=True):
        if not _ASYNC_WORDS.search(async_line):
            assert async_line == sync_line, f"{name}'s docstring says something else"


def _public_members(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        members.update({k: v for k, v in vars(klass).items() if not k.startswith("_")})
    return members


def _twin_map(module: ModuleType) -> dict[type, type]:
    """Each async class -> its generated twin, read from the twins' generic bases."""
    twins: dict[type, type] = {}
    for value in vars(module).values():
        if isinstance(value, type) and value.__module__ in (module.__name__, "platfone_async"):
            for base in getattr(value, "__orig_bases__", ()):
                (arg, *_) = typing.get_args(base) or (None,)
                if isinstance(arg, type) and not value.__name__.startswith("_"):
                    twins[arg] = value
    return twins


def assert_twins(async_cls: type, sync_cls: type, twins: dict[type, type]) -> None:
    """Every public async method of ``async_cls`` has a twin on ``sync_cls`` with the same
    parameters (names, kinds, defaults, annotations), the mapped return type and the same
    docstring told in sync terms."""
    sync_members = _public_members(sync_cls)
    for name, value in _public_members(async_cls).items():
        kind = _async_kind(value)
        if kind is None:
            continue
        sync_name = "close" if name == "aclose" else name
        assert sync_name in sync_members, f"{sync_cls.__name__} has no {sync_name}()"
        twin = sync_members[sync_name]
        if kind == "property":
            assert isinstance(twin, property)
            async_hints = _hints(value.fget)
            sync_hints = _hints(twin.fget)
            expected = _expected_return(kind, async_hints["return"], twins)
            assert expected == sync_hints["return"], name
            assert_docs_speak_sync(value, twin, name)
            continue
        assert_same_signature(value, twin, name)
        async_hints, sync_hints = _hints(value), _hints(twin)
        expected = _expected_return(kind, async_hints.get("return"), twins)
        assert expected == sync_hints.get("return"), f"{name} returns {sync_hints.get('return')}"
        assert_docs_speak_sync(value, twin, name)


def assert_same_signature(async_fn: Any, sync_fn: Any, name: str) -> None:
    """Same parameter names, kinds, defaults and (resolved) annotations."""
    async_params = list(inspect.signature(async_fn).parameters.values())
    sync_params = list(inspect.signature(sync_fn).parameters.values())
    assert [(p.name, p.kind) for p in async_params] == [(p.name, p.kind) for p in sync_params]
    for a, s in zip(async_params, sync_params, strict=True):
        assert a.default is s.default or a.default == s.default, f"{name}({a.name}=...)"
    async_hints, sync_hints = _hints(async_fn), _hints(sync_fn)
    for param in async_params:
        assert async_hints.get(param.name) == sync_hints.get(param.name), f"{name}({param.name})"


def test_every_async_method_has_an_identical_sync_twin() -> None:
    """Each public coroutine, iterator and context manager of AsyncPlatfone has its twin."""
    assert_twins(AsyncPlatfone, Platfone, _twin_map(_sync))


def test_every_yielded_handle_with_async_methods_has_a_twin_too() -> None:
    """Classes reached through results (the activation session) are mirrored as well."""
    twins = _twin_map(_sync)
    assert AsyncPlatfone in twins
    for async_cls, sync_cls in twins.items():
        assert_twins(async_cls, sync_cls, twins)
    assert sorted(cls.__name__ for cls in twins.values()) == sorted(_sync.__all__)


def test_constructor_takes_the_same_arguments() -> None:
    """Platfone(...) accepts exactly what AsyncPlatfone(...) accepts, with the same defaults."""
    assert_same_signature(AsyncPlatfone.__init__, Platfone.__init__, "__init__")


def test_context_manager_protocol_is_mirrored() -> None:
    """``async with``/``aclose`` on one side, ``with``/``close`` on the other."""
    assert hasattr(AsyncPlatfone, "__aenter__")
    assert hasattr(Platfone, "__enter__")
    assert hasattr(Platfone, "__exit__")
    assert callable(Platfone.close)


def test_generated_file_is_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m platfone_async._sync._codegen --check` passes: the facade is current."""
    assert 0 == _codegen.main(["--check"])
    assert "up to date" in capsys.readouterr().out


def test_check_fails_clearly_on_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check exits non-zero and names the command that regenerates the file."""
    stale = tmp_path / "_facade.py"
    stale.write_text(_codegen.OUTPUT.read_text().replace("def get_balance", "def get_bal"))
    monkeypatch.setattr(_codegen, "OUTPUT", stale)
    assert 1 == _codegen.main(["--check"])
    err = capsys.readouterr().err
    assert "is stale" in err
    assert "python -m platfone_async._sync._codegen" in err
    assert "-    def get_bal" in err


def test_the_sync_client_is_documented_in_sync_terms() -> None:
    """help(Platfone) and its session tell a sync user to write ``with`` and call
    ``close()``, never ``async with``, ``await`` or ``aclose()``."""
    twins = _twin_map(_sync)
    for sync_cls in twins.values():
        docs = [inspect.getdoc(sync_cls) or ""]
        docs += [inspect.getdoc(v) or "" for v in _public_members(sync_cls).values()]
        assert [] == [d for d in docs if _ASYNC_WORDS.search(d)], sync_cls.__name__
    assert "``with client.activation(" in (inspect.getdoc(Platfone.activation) or "")
    assert "``close()`` leaves it open" in (inspect.getdoc(Platfone) or "")
