"""Reading the async classes the sync facade mirrors: what each public member *is*.

Introspection says what a member is (a coroutine, an async generator, a context
manager, a property); the AST of its source gives the exact text of its signature. The
writer (``_codegen``) turns each :class:`Member` into a twin method.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import contextlib
import enum
import functools
import importlib
import importlib.util
import inspect
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MISSING",
    "CodegenError",
    "Kind",
    "Member",
    "discover",
    "dotted",
    "evaluate",
    "function_node",
    "members_of",
    "module_ast",
    "namespace_of",
    "payload",
    "twin_name",
]

_ASYNC_ITERATORS = frozenset(
    {
        collections.abc.AsyncIterator,
        collections.abc.AsyncIterable,
        collections.abc.AsyncGenerator,
        typing.AsyncIterator,
        typing.AsyncIterable,
        typing.AsyncGenerator,
    }
)
_ASYNC_CONTEXTS = frozenset({contextlib.AbstractAsyncContextManager, typing.AsyncContextManager})
MISSING = object()


class CodegenError(Exception):
    """The async class has something the generator cannot mirror faithfully."""


class Kind(enum.Enum):
    CALL = "call"  # coroutine method -> blocking method
    ITERATE = "iterate"  # async iterator -> iterator
    CONTEXT = "context"  # async context manager -> context manager
    SYNC = "sync"  # plain method -> run on the loop
    PROPERTY = "property"
    ATTRIBUTE = "attribute"
    CLOSE = "close"  # the root's aclose -> close (also stops the loop)


@dataclass
class Member:
    name: str  # the async name
    kind: Kind
    function: Any  # the function whose source gives the signature (None for ATTRIBUTE)
    node: ast.FunctionDef | ast.AsyncFunctionDef | None
    annotation: str | None = None  # ATTRIBUTE only: its annotation text

    @property
    def sync_name(self) -> str:
        return "close" if self.name == "aclose" else self.name


# -- reading the async class ----------------------------------------------------------------


@functools.cache
def module_ast(filename: str) -> ast.Module:
    return ast.parse(Path(filename).read_text(encoding="utf-8"), filename)


def function_node(function: Any) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The AST of ``function``, found in its file by its first line."""
    inner = inspect.unwrap(function)
    code = inner.__code__
    for node in ast.walk(module_ast(code.co_filename)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == (
            inner.__name__
        ):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if code.co_firstlineno in (first, node.lineno):
                return node
    raise CodegenError(f"cannot find the source of {inner.__qualname__}")


def namespace_of(cls: type) -> dict[str, Any]:
    """The names the module that defines ``cls``'s methods (whatever its ``__module__``
    says) can use in annotations: its globals, and what it imports under
    ``if TYPE_CHECKING:``."""
    for value in vars(cls).values():
        function = inspect.unwrap(getattr(value, "fget", value) or value)
        code = getattr(function, "__code__", None)
        if (
            code is not None
            and not code.co_filename.startswith("<")
            and function.__qualname__.startswith(cls.__qualname__ + ".")
        ):
            return _with_annotation_imports(function.__globals__)
    module = sys.modules.get(cls.__module__)  # no methods of its own: nothing to annotate
    if module is None:
        raise CodegenError(f"cannot find the module of {cls.__qualname__}")
    return vars(module)


def _with_annotation_imports(namespace: dict[str, Any]) -> dict[str, Any]:
    name, filename = namespace.get("__name__"), namespace.get("__file__")
    if not isinstance(name, str) or not isinstance(filename, str) or not filename.endswith(".py"):
        return namespace
    extra = annotation_imports(name, filename)
    return {**extra, **namespace} if extra else namespace


@functools.cache
def annotation_imports(module: str, filename: str) -> dict[str, Any]:
    """What ``module`` imports under a top-level ``if TYPE_CHECKING:`` (names its
    annotations use but it loads only when first needed), imported now; a module that
    cannot be imported (an extra not installed) is left out."""
    package = module if filename.endswith("__init__.py") else module.rpartition(".")[0]
    found: dict[str, Any] = {}
    for node in module_ast(filename).body:
        if not (isinstance(node, ast.If) and dotted(node.test) in _TYPE_CHECKING):
            continue
        for statement in node.body:
            with contextlib.suppress(ImportError):
                found.update(_imported_by(statement, package))
    return found


def _imported_by(statement: ast.stmt, package: str) -> dict[str, Any]:
    """The names an ``import`` or ``from ... import`` statement binds, imported."""
    if isinstance(statement, ast.ImportFrom):
        source = "." * statement.level + (statement.module or "")
        module = importlib.import_module(importlib.util.resolve_name(source, package))
        names = {}
        for alias in statement.names:
            value = getattr(module, alias.name, MISSING)
            if value is MISSING:  # a submodule, as in `from . import _x`
                value = importlib.import_module(f"{module.__name__}.{alias.name}")
            names[alias.asname or alias.name] = value
        return names
    if isinstance(statement, ast.Import):
        names = {}
        for alias in statement.names:
            module = importlib.import_module(alias.name)
            if alias.asname:
                names[alias.asname] = module
            else:
                top = alias.name.partition(".")[0]
                names[top] = sys.modules[top]
        return names
    return {}


_TYPE_CHECKING = (["TYPE_CHECKING"], ["typing", "TYPE_CHECKING"])


def _classify(value: Any, returns: object) -> Kind | None:
    """What kind of twin a class attribute gets (None: not mirrored)."""
    if isinstance(value, property):
        return Kind.PROPERTY
    if isinstance(value, (staticmethod, classmethod)) or not inspect.isfunction(value):
        return None
    inner = inspect.unwrap(value)
    if inspect.iscoroutinefunction(value) or (
        inspect.iscoroutinefunction(inner) and not inspect.isasyncgenfunction(value)
    ):
        return Kind.CALL
    if inspect.isasyncgenfunction(value):
        return Kind.ITERATE
    if inspect.isasyncgenfunction(inner) or returns in _ASYNC_CONTEXTS:
        return Kind.CONTEXT
    if returns in _ASYNC_ITERATORS:
        return Kind.ITERATE
    return Kind.SYNC


def members_of(cls: type) -> list[Member]:
    """The public members of ``cls`` that get a twin, in source order."""
    namespace = namespace_of(cls)
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        found.update(vars(klass))
    members = []
    for name, value in found.items():
        if name.startswith("_"):
            continue
        function = value.fget if isinstance(value, property) else value
        node = function_node(function) if inspect.isfunction(function) else None
        returns = _outer_type(node.returns, namespace) if node is not None else None
        kind = _classify(value, returns)
        if kind is None or node is None:
            continue
        if name == "aclose" and kind is Kind.CALL:
            kind = Kind.CLOSE
        members.append(Member(name, kind, function, node))
    mirrored = {member.name for member in members}
    for klass in reversed(cls.__mro__[:-1]):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if name.startswith("_") or name in mirrored or "ClassVar" in str(annotation):
                continue
            mirrored.add(name)
            text = annotation if isinstance(annotation, str) else _type_text(annotation)
            members.append(Member(name, Kind.ATTRIBUTE, None, None, annotation=text))
    return members


def _type_text(annotation: object) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _outer_type(node: ast.expr | None, namespace: dict[str, Any]) -> object:
    """The object a return annotation's outermost name refers to (``AsyncIterator`` in
    ``AsyncIterator[X]``), or None."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        node = ast.parse(node.value, mode="eval").body
    if isinstance(node, ast.Subscript):
        node = node.value
    return evaluate(node, namespace)


def evaluate(node: ast.expr, namespace: dict[str, Any]) -> object:
    """The object a ``Name`` or dotted ``Attribute`` chain refers to, or None."""
    chain = dotted(node)
    if chain is None:
        return None
    value = namespace.get(chain[0], getattr(builtins, chain[0], None))
    for part in chain[1:]:
        value = getattr(value, part, None)
    return value


def dotted(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = dotted(node.value)
        return None if head is None else [*head, node.attr]
    return None


def _has_async_members(cls: type) -> bool:
    try:
        members = members_of(cls)
    except (CodegenError, OSError, TypeError):
        return False
    return any(m.kind in (Kind.CALL, Kind.ITERATE, Kind.CONTEXT) for m in members)


def twin_name(cls: type) -> str:
    name = cls.__name__
    if name.startswith("Async") and name[5:6].isupper():
        return name[5:]
    return "Sync" + name


def discover(root: type) -> dict[type, str]:
    """The root and every class reachable from its results that has async members."""
    twins = {root: twin_name(root)}
    queue = [root]
    while queue:
        cls = queue.pop(0)
        namespace = namespace_of(cls)
        for member in members_of(cls):
            if member.node is None or member.kind in (Kind.ATTRIBUTE, Kind.PROPERTY):
                continue
            item = payload(member.node.returns, member.kind)
            value = evaluate(item, namespace) if item is not None else None
            if isinstance(value, type) and value not in twins and _has_async_members(value):
                twins[value] = twin_name(value)
                queue.append(value)
    return twins


def payload(node: ast.expr | None, kind: Kind) -> ast.expr | None:
    """The ``T`` of a result (``T``), an iterator (``AsyncIterator[T]``) or a context
    manager (``AbstractAsyncContextManager[T]`` / ``AsyncIterator[T]``)."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        node = ast.parse(node.value, mode="eval").body
    if kind in (Kind.ITERATE, Kind.CONTEXT):
        if not isinstance(node, ast.Subscript):
            return None
        inner = node.slice
        return inner.elts[0] if isinstance(inner, ast.Tuple) else inner
    return node
