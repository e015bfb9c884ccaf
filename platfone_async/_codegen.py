"""Writes ``_sync.py``, the blocking twin ``Platfone`` of ``AsyncPlatfone``.

    python -m platfone_async._codegen           # (re)write platfone_async/_sync.py
    python -m platfone_async._codegen --check   # exit 1 when the file on disk is stale
    python platfone_async/_codegen.py           # the same, even when _sync.py is too
                                                # stale to import at all

The generator reads the async class by introspection (what each member *is*) and by the
AST of its source (the exact text of every parameter, default and annotation), so the
sync methods show in ``help()`` and IDEs with the real signatures and docstrings. It
writes a fixed runtime (``_RUNTIME`` below: the event loop thread and the bridge to it)
followed by one generated class per async class, then formats the whole file with the
project's ruff (import sorting and ``ruff format``), so the file is lint-clean as written
and ``--check`` compares like with like.

Mapping rules, for each public member of the async class (in source order):

- ``async def`` -> a blocking method of the same name, parameters, defaults, annotations
  and docstring (``aclose`` becomes ``close``);
- an async generator function, or a method annotated to return ``AsyncIterator[T]``,
  ``AsyncIterable[T]`` or ``AsyncGenerator[T, ...]`` -> a method returning ``Iterator[T]``
  (the async generator is driven by one task on the loop, and closed there when the
  ``for`` loop is left early);
- an ``@asynccontextmanager`` method, or one annotated to return
  ``AbstractAsyncContextManager[T]`` -> a method returning ``AbstractContextManager[T]``
  (entered and exited in one task on the loop);
- a plain method -> a blocking method that runs on the loop; a property or an annotated
  attribute -> a read-only property.

Where a result, an item or the value of a context manager is an instance of a class that
itself has async methods (the session ``activation()`` yields), that class gets a
generated twin too (``AsyncX`` -> ``X``, otherwise ``X`` -> ``SyncX``) and the value is
wrapped in it, so ``with client.activation(...) as session: session.wait_for_sms()``
blocks like everything else. Twins are typed, documented classes rather than a dynamic
proxy: mypy, ``help()`` and completion see the real methods.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import collections.abc
import contextlib
import difflib
import enum
import functools
import importlib
import inspect
import subprocess
import sys
import textwrap
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["CodegenError", "main", "render"]

#: Where the facade lives (and the path ruff formats it as, for the project's settings).
OUTPUT = FORMAT_AS = Path(__file__).with_name("_sync.py")
COMMAND = "python -m platfone_async._codegen"

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
_MISSING = object()


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


@dataclass
class _Imports:
    """Every name the generated signatures use, and where to import it from."""

    output_module: str
    names: dict[str, tuple[str, object]] = field(default_factory=dict)  # name -> (module, obj)
    modules: dict[str, str] = field(default_factory=dict)  # alias -> module name

    def use(self, name: str, obj: object, source: str = "") -> None:
        """Import ``obj`` as ``name`` (``source``: the module whose text used it)."""
        if getattr(builtins, name, _MISSING) is obj:
            return
        if isinstance(obj, ModuleType):
            self._claim(name, obj)
            self.modules[name] = obj.__name__
            return
        self._claim(name, obj)
        self.names[name] = (self._home_of(name, obj, source), obj)

    def _claim(self, name: str, obj: object) -> None:
        known = self.names.get(name, (None, _MISSING))[1]
        if name in self.modules:
            known = sys.modules[self.modules[name]]
        if known is not _MISSING and known is not obj:
            raise CodegenError(f"two different objects are both called {name!r}")

    def _home_of(self, name: str, obj: object, source: str) -> str:
        """The module to import ``obj`` from: where it is defined or exported, never an
        ancestor package of the output (that would be a circular import)."""
        forbidden = _ancestors(self.output_module) | {self.output_module}
        declared = getattr(obj, "__module__", None)
        if isinstance(declared, str) and declared not in forbidden:
            module = sys.modules.get(declared)
            if module is not None and getattr(module, name, _MISSING) is obj:
                return declared
        roots = {self.output_module.partition(".")[0], source.partition(".")[0]}
        if isinstance(declared, str):
            roots.add(declared.partition(".")[0])
        candidates = [
            (
                not _defines(module, name),
                name not in getattr(module, "__all__", ()),
                len(modname),
                modname,
            )
            for modname, module in sorted(sys.modules.items())
            if module is not None
            and modname.partition(".")[0] in roots
            and modname not in forbidden
            and vars(module).get(name, _MISSING) is obj
        ]
        if not candidates:
            raise CodegenError(f"cannot find a module to import {name!r} from")
        return min(candidates)[3]

    def render(self) -> str:
        package = self.output_module.rpartition(".")[0]
        lines = []
        for alias, modname in sorted(self.modules.items()):
            tail = modname.rpartition(".")[2]
            if alias == modname:
                lines.append(f"import {modname}")
            elif modname.rpartition(".")[0] == package and tail == alias and package:
                lines.append(f"from . import {alias}")
            else:
                lines.append(f"import {modname} as {alias}")
        by_module: dict[str, list[str]] = {}
        for name, (modname, _) in self.names.items():
            by_module.setdefault(modname, []).append(name)
        for modname, names in sorted(by_module.items()):
            source = modname
            if package and modname.startswith(package + "."):
                source = "." + modname[len(package) + 1 :]
            lines.append(f"from {source} import {', '.join(sorted(names))}")
        return "\n".join(lines)


def _defines(module: ModuleType, name: str) -> bool:
    """Whether ``module``'s own source defines ``name`` at its top level."""
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str) or not filename.endswith(".py"):
        return False
    for node in _module_ast(filename).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == name:
                return True
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


def _ancestors(modname: str) -> set[str]:
    parts = modname.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


# -- reading the async class ----------------------------------------------------------------


@functools.cache
def _module_ast(filename: str) -> ast.Module:
    return ast.parse(Path(filename).read_text(encoding="utf-8"), filename)


def _function_node(function: Any) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The AST of ``function``, found in its file by its first line."""
    inner = inspect.unwrap(function)
    code = inner.__code__
    for node in ast.walk(_module_ast(code.co_filename)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == (
            inner.__name__
        ):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if code.co_firstlineno in (first, node.lineno):
                return node
    raise CodegenError(f"cannot find the source of {inner.__qualname__}")


def _namespace(cls: type) -> dict[str, Any]:
    """The globals of the module that defines ``cls`` (whatever its ``__module__`` says)."""
    for value in vars(cls).values():
        function = inspect.unwrap(getattr(value, "fget", value) or value)
        code = getattr(function, "__code__", None)
        if (
            code is not None
            and not code.co_filename.startswith("<")
            and function.__qualname__.startswith(cls.__qualname__ + ".")
        ):
            return function.__globals__  # type: ignore[no-any-return]
    module = sys.modules.get(cls.__module__)
    if module is None:
        raise CodegenError(f"cannot find the module of {cls.__qualname__}")
    return vars(module)


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


def _members(cls: type) -> list[Member]:
    """The public members of ``cls`` that get a twin, in source order."""
    namespace = _namespace(cls)
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        found.update(vars(klass))
    members = []
    for name, value in found.items():
        if name.startswith("_"):
            continue
        function = value.fget if isinstance(value, property) else value
        node = _function_node(function) if inspect.isfunction(function) else None
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
    return _evaluate(node, namespace)


def _evaluate(node: ast.expr, namespace: dict[str, Any]) -> object:
    """The object a ``Name`` or dotted ``Attribute`` chain refers to, or None."""
    chain = _dotted(node)
    if chain is None:
        return None
    value = namespace.get(chain[0], getattr(builtins, chain[0], None))
    for part in chain[1:]:
        value = getattr(value, part, None)
    return value


def _dotted(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr]
    return None


def _has_async_members(cls: type) -> bool:
    try:
        members = _members(cls)
    except (CodegenError, OSError, TypeError):
        return False
    return any(m.kind in (Kind.CALL, Kind.ITERATE, Kind.CONTEXT) for m in members)


def _twin_name(cls: type) -> str:
    name = cls.__name__
    if name.startswith("Async") and name[5:6].isupper():
        return name[5:]
    return "Sync" + name


# -- writing expressions ----------------------------------------------------------------------


class _Rewriter(ast.NodeTransformer):
    """Records the imports an expression needs; rewrites ``_pkgmodule.Name`` to ``Name``."""

    def __init__(self, imports: _Imports, namespace: dict[str, Any], package: str) -> None:
        self.imports = imports
        self.namespace = namespace
        self.package = package
        self.source = str(namespace.get("__name__", ""))

    def lookup(self, name: str) -> object:
        if name in self.namespace:
            return self.namespace[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        found = _type_checking_import(self.namespace, name)
        if found is _MISSING:
            raise CodegenError(f"{name!r} is not defined in {self.namespace.get('__name__')}")
        return found

    def visit_Name(self, node: ast.Name) -> ast.AST:
        self.imports.use(node.id, self.lookup(node.id), self.source)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        chain = _dotted(node)
        if chain is None:
            return self.generic_visit(node)
        root = self.lookup(chain[0])
        if isinstance(root, ModuleType) and root.__name__.partition(".")[0] == self.package:
            value: object = root
            for part in chain[1:]:
                value = getattr(value, part)
            self.imports.use(chain[-1], value, self.source)
            return ast.Name(id=chain[-1], ctx=ast.Load())
        self.imports.use(chain[0], root, self.source)
        return node


def _type_checking_import(namespace: dict[str, Any], name: str) -> object:
    """A name the module imports only under ``TYPE_CHECKING``, imported now."""
    filename = namespace.get("__file__")
    if not isinstance(filename, str):
        return _MISSING
    for node in ast.walk(_module_ast(filename)):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    package = namespace.get("__package__") or ""
                    base = importlib.import_module("." * node.level + (node.module or ""), package)
                    return getattr(base, alias.name)
    return _MISSING


@dataclass
class _Context:
    imports: _Imports
    twins: dict[type, str]  # async class -> twin class name
    package: str

    def annotation(self, node: ast.expr, namespace: dict[str, Any]) -> str:
        """An annotation's text (a string annotation is read as the expression it holds)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node = ast.parse(node.value, mode="eval").body
        return self.text(node, namespace)

    def text(self, node: ast.expr, namespace: dict[str, Any]) -> str:
        """An expression's text, its names imported, package-module prefixes dropped."""
        rewritten = _Rewriter(self.imports, namespace, self.package).visit(
            ast.fix_missing_locations(ast.parse(ast.unparse(node), mode="eval").body)
        )
        return ast.unparse(rewritten)

    def payload(self, node: ast.expr | None, kind: Kind) -> ast.expr | None:
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

    def twin_of(self, node: ast.expr | None, namespace: dict[str, Any]) -> type | None:
        if node is None:
            return None
        value = _evaluate(node, namespace)
        return value if isinstance(value, type) and value in self.twins else None


# -- writing classes ----------------------------------------------------------------------------


def _doc_literal(doc: str, indent: str) -> str:
    body = textwrap.indent(doc, indent).lstrip() if "\n" in doc else doc
    if body.endswith("\n"):
        body = body.rstrip() + "\n" + indent
    elif "\n" in body:
        body += "\n" + indent
    if '"""' in body or body.endswith('"'):
        return repr(doc)
    prefix = "r" if "\\" in body else ""
    return f'{prefix}"""{body}"""'


def _raw_doc(function: Any) -> str | None:
    doc = getattr(function, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


def _parameters(
    node: ast.FunctionDef | ast.AsyncFunctionDef, ctx: _Context, namespace: dict[str, Any]
) -> tuple[str, str]:
    """The parameter list (with ``self``) and the arguments that forward it (without)."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    params: list[str] = []
    forward: list[str] = []

    def one(arg: ast.arg, default: ast.expr | None, star: str = "") -> str:
        text = star + arg.arg
        if arg.annotation is not None:
            text += ": " + ctx.annotation(arg.annotation, namespace)
            if default is not None:
                text += " = " + ctx.text(default, namespace)
        elif default is not None:
            text += "=" + ctx.text(default, namespace)
        return text

    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        params.append(one(arg, default))
        if index:  # not self
            forward.append(arg.arg)
        if index == len(args.posonlyargs) - 1:
            params.append("/")
    if args.vararg is not None:
        params.append(one(args.vararg, None, "*"))
        forward.append("*" + args.vararg.arg)
    elif args.kwonlyargs:
        params.append("*")
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(one(arg, default))
        forward.append(f"{arg.arg}={arg.arg}")
    if args.kwarg is not None:
        params.append(one(args.kwarg, None, "**"))
        forward.append("**" + args.kwarg.arg)
    return ", ".join(params), ", ".join(forward)


def _method(member: Member, cls: type, ctx: _Context, namespace: dict[str, Any], root: bool) -> str:
    owner = cls.__name__
    if member.kind is Kind.ATTRIBUTE:
        assert member.annotation is not None
        annotation = ctx.annotation(ast.Constant(member.annotation), namespace)
        return (
            f"    @property\n    def {member.name}(self) -> {annotation}:\n"
            f"        return self._target().{member.name}\n"
        )
    node = member.node
    assert node is not None
    signature, forward = _parameters(node, ctx, namespace)
    doc = _raw_doc(member.function)
    doc_line = f"        {_doc_literal(doc, '        ')}\n" if doc else ""
    payload = ctx.payload(node.returns, member.kind)
    twin = ctx.twin_of(payload, namespace)
    if payload is not None and twin is not None:
        item = ctx.twins[twin]
        ctx.annotation(payload, namespace)  # the async class is imported for the call
    elif payload is not None:
        item = ctx.annotation(payload, namespace)
    else:
        ctx.imports.use("Any", Any)
        item = "Any"
    call = f"{owner}.{member.name}" + (f", {forward}" if forward else "")
    wrap = f"{ctx.twins[twin]}, " if twin is not None else ""
    suffix = "_as" if twin is not None else ""
    if member.kind is Kind.PROPERTY:
        return (
            f"    @property\n    def {member.name}(self) -> {item}:\n{doc_line}"
            f"        return self._target().{member.name}\n"
        )
    if member.kind is Kind.CLOSE and root:
        return f"    def close({signature}) -> None:\n{doc_line}        self._close()\n"
    if member.kind in (Kind.CALL, Kind.CLOSE):
        returns, body = item, f"return self._call{suffix}({wrap}{call})"
    elif member.kind is Kind.ITERATE:
        returns, body = f"Iterator[{item}]", f"return self._iterate{suffix}({wrap}{call})"
    elif member.kind is Kind.CONTEXT:
        returns = f"AbstractContextManager[{item}]"
        body = f"return self._context{suffix}({wrap}{call})"
    else:
        returns, body = item, f"return self._call_sync{suffix}({wrap}{call})"
    return f"    def {member.sync_name}({signature}) -> {returns}:\n{doc_line}        {body}\n"


def _root_doc(cls: type, name: str) -> str:
    doc = inspect.cleandoc(cls.__doc__ or "")
    lines = doc.splitlines()
    args: list[str] = []
    if "Args:" in lines:
        for line in lines[lines.index("Args:") :]:
            if args and line and not line.startswith(" "):
                break
            args.append(line)
    while args and not args[-1]:
        args.pop()
    loop = (
        f"It runs its own event loop in a daemon thread, started on first use, on which the "
        f":class:`{cls.__name__}` and everything it holds live; so it works alike in Jupyter "
        "(where a loop already runs), in threads and in scripts, and calls from several "
        "threads share one client. Ctrl-C in a blocking call cancels that call on the loop "
        "and waits for its clean-up."
    )
    parts = [
        f"The blocking twin of :class:`{cls.__name__}`: same methods, same results.",
        "\n".join(args),
        textwrap.fill(loop, 88),
        f"Use it as ``with {name}() as client:``, or call ``client.close()``.",
    ]
    return "\n\n".join(part for part in parts if part)


def _class(cls: type, ctx: _Context, root: bool) -> str:
    name = ctx.twins[cls]
    namespace = _namespace(cls)
    members = _members(cls)
    ctx.imports.use(cls.__name__, cls, str(namespace.get("__name__", "")))
    out: list[str] = []
    if root:
        out.append(f"class {name}(_Root[{cls.__name__}]):\n")
        out.append(f"    {_doc_literal(_root_doc(cls, name), '    ')}\n\n")
        aclose = "None"
        if any(m.kind is Kind.CLOSE for m in members):
            aclose = f"{cls.__name__}.aclose"
        init = vars(cls).get("__init__")
        if inspect.isfunction(init):
            signature, forward = _parameters(_function_node(init), ctx, namespace)
        else:
            signature, forward = "self", ""
        out.append(
            f"    def __init__({signature}) -> None:\n"
            f"        super().__init__(lambda: {cls.__name__}({forward}), {aclose})\n\n"
            f"    def __enter__(self) -> {name}:\n        return self\n\n"
            "    def __exit__(\n        self,\n        exc_type: type[BaseException] | None,\n"
            "        exc: BaseException | None,\n        tb: TracebackType | None,\n"
            "    ) -> None:\n        self.close()\n\n"
        )
        if not any(m.kind is Kind.CLOSE for m in members):
            out.append(
                '    def close(self) -> None:\n        """Stop the event loop thread."""\n'
                "        self._close()\n\n"
            )
    else:
        doc = f"The blocking twin of :class:`{cls.__name__}`."
        if cls.__doc__:
            doc += "\n\n" + inspect.cleandoc(cls.__doc__)
        out.append(f"class {name}(_Twin[{cls.__name__}]):\n")
        out.append(f"    {_doc_literal(doc, '    ')}\n\n")
    for member in members:
        out.append(_method(member, cls, ctx, namespace, root) + "\n")
    return "".join(out).rstrip() + "\n"


def _discover(root: type) -> dict[type, str]:
    """The root and every class reachable from its results that has async members."""
    twins = {root: _twin_name(root)}
    queue = [root]
    while queue:
        cls = queue.pop(0)
        namespace = _namespace(cls)
        for member in _members(cls):
            if member.node is None or member.kind in (Kind.ATTRIBUTE, Kind.PROPERTY):
                continue
            payload = _Context(_Imports("x"), {}, "").payload(member.node.returns, member.kind)
            value = _evaluate(payload, namespace) if payload is not None else None
            if isinstance(value, type) and value not in twins and _has_async_members(value):
                twins[value] = _twin_name(value)
                queue.append(value)
    return twins


def _header(root: type) -> str:
    return f'''"""The sync facade: ``{_twin_name(root)}``, the blocking twin of ``{root.__name__}``.

GENERATED from ``{root.__name__}`` - do not edit by hand. Regenerate it with

    {COMMAND}

after changing the async client; ``--check`` (run by CI and the tests) fails while
this file is stale.
"""
'''


def render(root: type, *, output_module: str, output_path: Path | None = None) -> str:
    """The formatted source of the sync facade for ``root``, to live in ``output_module``."""
    twins = _discover(root)
    package = (_namespace(root).get("__name__") or root.__module__).partition(".")[0]
    ctx = _Context(_Imports(output_module), twins, package)
    classes = [_class(cls, ctx, cls is root) for cls in reversed(list(twins))]
    names = sorted(twins.values())
    all_line = "__all__ = [" + ", ".join(f'"{n}"' for n in names) + "]"
    text = "\n".join(
        [
            _header(root),
            _RUNTIME_IMPORTS,
            ctx.imports.render(),
            "",
            all_line,
            _RUNTIME,
            "# -- generated from the async classes " + "-" * 50,
            "",
            "\n\n".join(classes),
        ]
    )
    return _format(text, output_path or Path(output_module.replace(".", "/") + ".py"))


# -- formatting with the project's ruff ------------------------------------------------------------


def _ruff(args: Sequence[str], text: str, path: Path) -> str:
    command = [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(path), "-"]
    try:
        done = subprocess.run(
            command, input=text, capture_output=True, text=True, check=False, cwd=path.parent
        )
    except OSError as exc:  # pragma: no cover - no Python to run ruff with
        raise CodegenError(f"cannot run ruff: {exc}") from exc
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.strip() or f"exit status {done.returncode}"
        raise CodegenError(f"`ruff {' '.join(args)}` failed (is ruff installed?): {message}")
    return done.stdout


def _format(text: str, path: Path) -> str:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    isort = ["check", "--quiet", "--fix", "--exit-zero", "--select", "I"]
    return _ruff(["format", "--quiet"], _ruff(isort, text, path), path)


# -- the command --------------------------------------------------------------------------------


def _generate() -> str:
    return render(_async_client(), output_module="platfone_async._sync", output_path=FORMAT_AS)


def _async_client() -> type:
    try:
        from platfone_async._client import AsyncPlatfone
    except Exception:
        if __name__ != "__main__":
            raise
        # Run as a script (``python platfone_async/_codegen.py``), a stale _sync.py that
        # no longer imports must not stop its own regeneration: stand a stub in for it.
        for name in [n for n in sys.modules if n.partition(".")[0] == "platfone_async"]:
            del sys.modules[name]
        stub = ModuleType("platfone_async._sync")
        stub.Platfone = None  # type: ignore[attr-defined]
        sys.modules[stub.__name__] = stub
        from platfone_async._client import AsyncPlatfone
    return AsyncPlatfone


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if _sync.py is stale")
    args = parser.parse_args(argv)
    try:
        text = _generate()
    except CodegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        if current == text:
            print(f"{OUTPUT.name} is up to date")
            return 0
        diff = difflib.unified_diff(
            current.splitlines(), text.splitlines(), "on disk", "generated", lineterm="", n=1
        )
        print("\n".join(list(diff)[:60]), file=sys.stderr)
        print(f"\n{OUTPUT} is stale: regenerate it with `{COMMAND}`", file=sys.stderr)
        return 1
    if current != text:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT}")
    else:
        print(f"{OUTPUT.name} is up to date")
    return 0


# -- the runtime every generated file starts with ------------------------------------------------

_RUNTIME_IMPORTS = """\
from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
"""

_RUNTIME = '''
_A = TypeVar("_A")
_P = ParamSpec("_P")
_R = TypeVar("_R")
_W = TypeVar("_W")

#: How long a thread waiting for the loop sleeps between looks at Ctrl-C (Windows needs it).
_POLL_SECONDS = 0.25


class _Step:
    """One piece of work handed to a task on the loop, and its outcome."""

    __slots__ = ("cancel", "done", "end_on_error", "error", "finished", "fn", "last", "value")

    def __init__(self, fn: Callable[[], Awaitable[Any]], *, last: bool, end_on_error: bool) -> None:
        self.fn = fn
        self.last = last
        self.end_on_error = end_on_error
        self.cancel = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.done = threading.Lock()
        self.done.acquire()

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.done.release()

    def wait(self) -> None:
        # In slices, so that Ctrl-C gets through on every platform.
        while not self.done.acquire(timeout=_POLL_SECONDS):
            pass

    def outcome(self) -> Any:
        error, self.error = self.error, None
        if error is None:
            return self.value
        try:
            raise error
        finally:
            del error  # no cycle through this frame


class _Task:
    """A task on the loop that runs, one after another, the steps one caller hands it.

    An async generator or context manager must be driven from a single task (a cancel
    scope or task group inside it may span a ``yield``), so each iterator and each
    context manager gets a task of its own; a plain call is a task of one step.
    """

    __slots__ = ("_runtime", "_scope", "_started", "_step", "_wakeup", "ended")

    def __init__(self, runtime: _Runtime) -> None:
        self._runtime = runtime
        self._started = False
        self._step: _Step | None = None
        self._scope: anyio.CancelScope | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self.ended = False

    def run(
        self, fn: Callable[[], Awaitable[Any]], *, last: bool = False, end_on_error: bool = False
    ) -> Any:
        """Run ``fn()`` in this task and wait for it; Ctrl-C here cancels it there."""
        runtime = self._runtime
        if threading.get_ident() == runtime.thread_id:
            raise RuntimeError(
                f"a {runtime.name} method was called from its own event loop; "
                "await the async client there instead"
            )
        if sys.is_finalizing():  # the loop thread, a daemon, may be frozen already
            raise RuntimeError("the interpreter is shutting down")
        step = _Step(fn, last=last, end_on_error=end_on_error)
        runtime.pending.add(step)
        try:
            runtime.submit(self._resume, step)
            try:
                step.wait()
            except BaseException:
                # Ctrl-C (or another exception raised in this thread): cancel the step on
                # the loop and wait until its clean-up has run there; a second Ctrl-C
                # stops the waiting.
                with contextlib.suppress(RuntimeError):
                    runtime.submit(self._cancel, step)
                    if not step.finished:
                        step.wait()
                raise
        finally:
            runtime.pending.discard(step)
        return step.outcome()

    def end_with(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``fn()`` as the last step: waiting for it where this thread may wait."""
        if self.ended or not self._started or sys.is_finalizing():
            return
        runtime = self._runtime
        if runtime.closed or threading.get_ident() == runtime.thread_id:
            with contextlib.suppress(RuntimeError):
                runtime.submit(self._resume, _Step(fn, last=True, end_on_error=False))
            return
        self.run(fn, last=True)

    # -- on the loop --

    def _resume(self, step: _Step) -> None:
        self._started = True
        if self.ended:
            step.error = RuntimeError("this iterator or context manager has already ended")
            step.finish()
            return
        self._step = step
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is None:
            self._runtime.spawn(self._main())
        else:
            wakeup.set_result(None)

    def _cancel(self, step: _Step) -> None:
        if not step.finished:
            step.cancel = True
            if self._step is step and self._scope is not None:
                self._scope.cancel()

    def _current(self) -> _Step:
        assert self._step is not None
        return self._step

    async def _main(self) -> None:
        # One cancel scope for the task's whole life: an async generator or context
        # manager may enter scopes of its own in one step and leave them in a later one,
        # so only a scope around all the steps can cancel any of them.
        step = self._current()
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if step.cancel:
                    scope.cancel()
                while True:
                    try:
                        step.value = await step.fn()
                    except Exception as exc:
                        step.error = exc
                    if step.last or (step.end_on_error and step.error is not None):
                        return
                    self._wakeup = asyncio.get_running_loop().create_future()
                    step.finish()
                    with anyio.CancelScope(shield=True):
                        await self._wakeup
                    step = self._current()
        except asyncio.CancelledError:
            if not step.finished:  # the loop is shutting down under us
                step.error = self._runtime.closed_error()
            raise
        except BaseException as exc:  # KeyboardInterrupt or SystemExit raised by the step
            if not step.finished:
                step.error = exc
        finally:
            self._scope = None
            self.ended = True
            step.finish()


class _Runtime:
    """The event loop thread of one sync client: started on first use, stopped by close().

    The loop is asyncio's, run by an anyio blocking portal in a daemon thread; the async
    object is created on it (so that everything it holds belongs to that loop). Calls
    reach it with ``call_soon_threadsafe`` and come back through a lock: one thread hop
    each way, cheaper than ``BlockingPortal.call``.
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], Any],
        aclose: Callable[[Any], Awaitable[object]] | None,
    ) -> None:
        self.name = name
        self._factory = factory
        self._aclose = aclose
        self._lock = threading.Lock()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.thread_id: int | None = None
        self.target: Any = None
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.pending: set[_Step] = set()

    def closed_error(self) -> RuntimeError:
        return RuntimeError(f"this {self.name} is closed")

    def open(self) -> Any:
        """The async object, created on the loop (started now if need be)."""
        with self._lock:
            if self.closed:
                raise self.closed_error()
            if self.target is None:
                self._start()
                try:
                    self.target = _Task(self).run(self._build, last=True)
                except BaseException:
                    self._stop()
                    raise
            return self.target

    async def _build(self) -> Any:
        return self._factory()

    def _start(self) -> None:
        cm = start_blocking_portal("asyncio")
        portal = cm.__enter__()
        self._portal_cm, self._portal = cm, portal
        self._loop, self.thread_id = portal.call(_adopt_loop_thread, f"{self.name}-loop")

    def _stop(self) -> None:
        cm, self._portal_cm, self._portal = self._portal_cm, None, None
        if cm is not None:
            # Stops the portal; the loop then cancels whatever still runs on it (each
            # waiting caller gets an error) and the thread ends.
            cm.__exit__(None, None, None)
        self._loop = None
        self.thread_id = None
        for step in list(self.pending):
            if not step.finished:
                step.error = self.closed_error()
                step.finish()

    def submit(self, callback: Callable[[_Step], None], step: _Step) -> None:
        loop = self._loop
        if loop is None or self.closed:
            raise self.closed_error()
        try:
            loop.call_soon_threadsafe(callback, step)
        except RuntimeError:  # the loop has closed
            raise self.closed_error() from None

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self.tasks.discard)

    def run(self, fn: Callable[[], Awaitable[_R]]) -> _R:
        """Run ``fn()`` on the loop in a task of its own and wait for its outcome."""
        return cast(_R, _Task(self).run(fn, last=True))

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                target, aclose = self.target, self._aclose
                if target is not None and aclose is not None:
                    self.run(lambda: aclose(target))
            finally:
                self.closed = True
                self.target = None
                self._stop()

    def abandon(self) -> None:
        # The client was garbage-collected unclosed, in whatever thread (even the loop's
        # own): close it from a helper thread, which may wait where this one may not.
        if not self.closed and self._loop is not None and not sys.is_finalizing():
            threading.Thread(target=self.close, name=f"{self.name}-closer", daemon=True).start()


def _adopt_loop_thread(name: str) -> tuple[asyncio.AbstractEventLoop, int]:
    threading.current_thread().name = name
    return asyncio.get_running_loop(), threading.get_ident()


class _Twin(Generic[_A]):
    """What every generated class shares: the forwarding of each kind of method."""

    _runtime: _Runtime

    def __init__(self, client: _Root[Any], target: _A) -> None:
        self._client_ref = client  # keeps the client, and so its loop, alive
        self._runtime = client._runtime
        self._async = target

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._async!r}>"

    def _client(self) -> _Root[Any]:
        return self._client_ref

    def _target(self) -> _A:
        return self._async

    def _call(
        self,
        method: Callable[Concatenate[_A, _P], Awaitable[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _R:
        target = self._target()
        return self._runtime.run(lambda: method(target, *args, **kwargs))

    def _call_as(
        self,
        wrap: Callable[[_Root[Any], _R], _W],
        method: Callable[Concatenate[_A, _P], Awaitable[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _W:
        return wrap(self._client(), self._call(method, *args, **kwargs))

    def _call_sync(
        self, method: Callable[Concatenate[_A, _P], _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        target = self._target()

        async def call() -> _R:
            return method(target, *args, **kwargs)

        return self._runtime.run(call)

    def _iterate(
        self,
        method: Callable[Concatenate[_A, _P], AsyncIterator[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Iterator[_R]:
        return _drive(self, lambda target: method(target, *args, **kwargs))

    def _iterate_as(
        self,
        wrap: Callable[[_Root[Any], _R], _W],
        method: Callable[Concatenate[_A, _P], AsyncIterator[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Iterator[_W]:
        client = self._client()
        with contextlib.closing(_drive(self, lambda target: method(target, *args, **kwargs))) as it:
            for item in it:
                yield wrap(client, item)

    def _context(
        self,
        method: Callable[Concatenate[_A, _P], AbstractAsyncContextManager[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> AbstractContextManager[_R]:
        target = self._target()
        return _Context(self, lambda: method(target, *args, **kwargs), lambda value: value)

    def _context_as(
        self,
        wrap: Callable[[_Root[Any], _R], _W],
        method: Callable[Concatenate[_A, _P], AbstractAsyncContextManager[_R]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> AbstractContextManager[_W]:
        target, client = self._target(), self._client()
        return _Context(
            self, lambda: method(target, *args, **kwargs), lambda value: wrap(client, value)
        )


class _Root(_Twin[_A]):
    """The generated client class: owns the runtime and the async client it creates."""

    def __init__(
        self, factory: Callable[[], _A], aclose: Callable[[_A], Awaitable[object]] | None
    ) -> None:
        self._runtime = _Runtime(type(self).__name__, factory, aclose)
        weakref.finalize(self, self._runtime.abandon).atexit = False

    def __repr__(self) -> str:
        name, target = type(self).__name__, self._runtime.target
        if target is None:
            return f"<{name} ({'closed' if self._runtime.closed else 'not started'})>"
        text, prefix = repr(target), f"<{type(target).__name__}"
        return f"<{name}{text[len(prefix) :]}" if text.startswith(prefix) else f"<{name} {text}>"

    def _client(self) -> _Root[Any]:
        return self

    def _target(self) -> _A:
        target = self._runtime.target
        return cast(_A, target if target is not None else self._runtime.open())

    def _close(self) -> None:
        self._runtime.close()


def _drive(
    twin: _Twin[_A], make: Callable[[_A], AsyncIterator[_R]]
) -> Generator[_R, None, None]:
    """Iterate an async iterator in one task on the loop; leaving early closes it there."""
    target = twin._target()
    task = _Task(twin._runtime)
    iterator: AsyncIterator[_R] | None = None

    async def first() -> _R:
        nonlocal iterator
        iterator = make(target)
        return await iterator.__anext__()

    step: Callable[[], Awaitable[_R]] = first
    try:
        while True:
            try:
                item = task.run(step, end_on_error=True)
            except StopAsyncIteration:
                return
            yield item
            assert iterator is not None
            step = iterator.__anext__
    finally:
        if iterator is not None:
            task.end_with(_closer(iterator))


def _closer(iterator: object) -> Callable[[], Awaitable[None]]:
    async def aclose() -> None:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()

    return aclose


class _Context(AbstractContextManager[_W]):
    """A context manager whose async twin is entered and exited in one task on the loop."""

    def __init__(
        self,
        twin: _Twin[Any],
        make: Callable[[], AbstractAsyncContextManager[Any]],
        wrap: Callable[[Any], _W],
    ) -> None:
        self._twin = twin  # keeps the client alive while in use
        self._make = make
        self._wrap = wrap
        self._task: _Task | None = None
        self._cm: AbstractAsyncContextManager[Any] | None = None
        self._entered = False

    async def _aenter(self) -> Any:
        self._cm = self._make()
        value = await self._cm.__aenter__()
        self._entered = True
        return value

    def __enter__(self) -> _W:
        if self._task is not None:
            raise RuntimeError("this context manager has been entered already")
        task = self._task = _Task(self._twin._runtime)
        try:
            value = task.run(self._aenter, end_on_error=True)
        except BaseException as exc:
            # Ctrl-C after __aenter__ succeeded: __exit__ will not be called, so exit now.
            if self._entered and not task.ended:
                self._exit(type(exc), exc, exc.__traceback__)
            raise
        return self._wrap(value)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self._exit(exc_type, exc, tb)

    def _exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task, cm = self._task, self._cm
        if task is None or cm is None or task.ended or not self._entered:
            return False
        self._entered = False
        return bool(task.run(lambda: cm.__aexit__(exc_type, exc, tb), last=True))
'''


if __name__ == "__main__":
    sys.exit(main())
