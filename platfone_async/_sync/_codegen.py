"""Writes ``_facade.py``, the blocking twin ``Platfone`` of ``AsyncPlatfone``.

    python -m platfone_async._sync._codegen           # (re)write _sync/_facade.py
    python -m platfone_async._sync._codegen --check   # exit 1 when the file is stale

The generator reads the async class by introspection (what each member *is*) and by the
AST of its source (the exact text of every parameter, default and annotation; see
``_introspect``), so the sync methods show in ``help()`` and IDEs with the real
signatures and docstrings. It writes only what must be generated - one class per async
class, each method a signature, a docstring and a one-line body that hands the call to
the hand-written runtime (``_runtime``: the event loop thread and the bridge to it) -
then formats the file with the project's ruff (import sorting and ``ruff format``), so
the file is lint-clean as written and ``--check`` compares like with like. The facade
imports the async classes, the names their signatures use (``_naming`` finds each one's
home) and the runtime, nothing else. Nothing imports the facade while it is being
regenerated (``platfone_async`` loads it lazily), so a stale one never stands in the way.

Mapping rules, for each public member of the async class (in source order):

- ``async def`` -> a blocking method of the same name, parameters, defaults, annotations
  and docstring (``aclose`` becomes ``close``), the docstring told in sync terms
  (:func:`sync_doc`: ``async with`` -> ``with``, ``await x`` -> ``x``, ...);
- an async generator function, or a method annotated to return ``AsyncIterator[T]``,
  ``AsyncIterable[T]`` or ``AsyncGenerator[T, ...]`` -> a method returning ``Iterator[T]``
  (the async generator is driven by one task on the loop, and closed there when the
  ``for`` loop is left early);
- an ``@asynccontextmanager`` method, or one annotated to return
  ``AbstractAsyncContextManager[T]`` -> a method returning ``AbstractContextManager[T]``
  (entered and exited in one task on the loop);
- the constructor -> one that builds the async object on the loop at first use; when
  the async class has a ``_resolve_api_key`` static method, the sync one calls it first,
  so a missing key fails at construction, not at the first call;
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
import collections.abc
import contextlib
import difflib
import inspect
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._introspect import (
    CodegenError,
    Kind,
    Member,
    discover,
    evaluate,
    function_node,
    members_of,
    namespace_of,
    payload,
    twin_name,
)
from ._naming import Imports, Rewriter
from ._runtime import Root, Twin, build_later

__all__ = ["CodegenError", "main", "render"]

#: Where the facade lives (and the path ruff formats it as, for the project's settings).
OUTPUT = FORMAT_AS = Path(__file__).with_name("_facade.py")
OUTPUT_MODULE = "platfone_async._sync._facade"
COMMAND = "python -m platfone_async._sync._codegen"
#: A static method of the async root class that the sync constructor calls first.
EARLY_CHECK = "_resolve_api_key"


@dataclass
class _Context:
    imports: Imports
    twins: dict[type, str]  # async class -> twin class name
    package: str

    def annotation(self, node: ast.expr, namespace: dict[str, Any]) -> str:
        """An annotation's text (a string annotation is read as the expression it holds)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node = ast.parse(node.value, mode="eval").body
        return self.text(node, namespace)

    def text(self, node: ast.expr, namespace: dict[str, Any]) -> str:
        """An expression's text, its names imported, package-module prefixes dropped."""
        rewritten = Rewriter(self.imports, namespace, self.package).visit(
            ast.fix_missing_locations(ast.parse(ast.unparse(node), mode="eval").body)
        )
        return ast.unparse(rewritten)

    def twin_of(self, node: ast.expr | None, namespace: dict[str, Any]) -> type | None:
        if node is None:
            return None
        value = evaluate(node, namespace)
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


#: How an async docstring's words read for the blocking twin, in order.
_SYNC_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\basync with\b"), "with"),
    (re.compile(r"\basync for\b"), "for"),
    (re.compile(r"\bawait\s+"), ""),
    (re.compile(r"\baclose\b"), "close"),
    (re.compile(r"\b([Aa])n async (iterator|iterable|generator)\b"), r"\1n \2"),
    (re.compile(r"\b([Aa])n async context manager\b"), r"\1 context manager"),
    (re.compile(r"\basync (iterator|iterable|generator|context manager)"), r"\1"),
)


def sync_doc(doc: str) -> str:
    """``doc`` as the blocking twin's docstring: ``async with`` -> ``with``, ``async for``
    -> ``for``, ``await x`` -> ``x``, ``aclose()`` -> ``close()``, an async iterator or
    context manager -> an iterator or context manager."""
    for pattern, replacement in _SYNC_WORDS:
        doc = pattern.sub(replacement, doc)
    return doc


def _raw_doc(function: Any) -> str | None:
    doc = getattr(function, "__doc__", None)
    return sync_doc(inspect.cleandoc(doc)) if isinstance(doc, str) else None


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
    result = payload(node.returns, member.kind)
    twin = ctx.twin_of(result, namespace)
    if result is not None and twin is not None:
        item = ctx.twins[twin]
        ctx.annotation(result, namespace)  # the async class is imported for the call
    elif result is not None:
        item = ctx.annotation(result, namespace)
    else:
        ctx.imports.use("Any", Any)
        item = "Any"
    call = f"{owner}.{member.name}" + (f", {forward}" if forward else "")
    wrap = f"{ctx.twins[twin]}, " if twin is not None else ""
    if twin is not None and twin is next(iter(ctx.twins)):
        # The root's class (a copy of the client, as with_options returns): a view on
        # this client's loop, not a new client with a loop of its own.
        wrap = f"{ctx.twins[twin]}._view, "
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
        ctx.imports.use("Iterator", collections.abc.Iterator)
        returns, body = f"Iterator[{item}]", f"return self._iterate{suffix}({wrap}{call})"
    elif member.kind is Kind.CONTEXT:
        ctx.imports.use("AbstractContextManager", contextlib.AbstractContextManager)
        returns = f"AbstractContextManager[{item}]"
        body = f"return self._context{suffix}({wrap}{call})"
    else:
        returns, body = item, f"return self._call_sync{suffix}({wrap}{call})"
    return f"    def {member.sync_name}({signature}) -> {returns}:\n{doc_line}        {body}\n"


def _root_doc(cls: type, name: str) -> str:
    doc = sync_doc(inspect.cleandoc(cls.__doc__ or ""))
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
    namespace = namespace_of(cls)
    members = members_of(cls)
    ctx.imports.use(cls.__name__, cls, str(namespace.get("__name__", "")))
    out: list[str] = []
    if root:
        out.append(f"class {name}(Root[{cls.__name__}]):\n")
        out.append(f"    {_doc_literal(_root_doc(cls, name), '    ')}\n\n")
        aclose = "None"
        if any(m.kind is Kind.CLOSE for m in members):
            aclose = f"{cls.__name__}.aclose"
        init = vars(cls).get("__init__")
        if inspect.isfunction(init):
            signature, forward = _parameters(function_node(init), ctx, namespace)
        else:
            signature, forward = "self", ""
        factory = f"lambda: {cls.__name__}({forward})"
        if callable(vars(cls).get(EARLY_CHECK)) and forward.startswith("api_key,"):
            # build_later's arguments are evaluated now: the key is checked (and read from
            # the environment) at construction, the async client still built at first use.
            ctx.imports.use("build_later", build_later)
            checked = f"{cls.__name__}.{EARLY_CHECK}(api_key)" + forward[len("api_key") :]
            factory = f"build_later({cls.__name__}, {checked})"
        out.append(
            f"    def __init__({signature}) -> None:\n"
            f"        super().__init__({factory}, {aclose})\n\n"
        )
    else:
        doc = f"The blocking twin of :class:`{cls.__name__}`."
        if cls.__doc__:
            doc += "\n\n" + sync_doc(inspect.cleandoc(cls.__doc__))
        out.append(f"class {name}(Twin[{cls.__name__}]):\n")
        out.append(f"    {_doc_literal(doc, '    ')}\n\n")
    for member in members:
        out.append(_method(member, cls, ctx, namespace, root) + "\n")
    return "".join(out).rstrip() + "\n"


def _header(root: type) -> str:
    return f'''"""The sync facade: ``{twin_name(root)}``, the blocking twin of ``{root.__name__}``.

GENERATED from ``{root.__name__}`` - do not edit by hand. Regenerate it with

    {COMMAND}

after changing the async client; ``--check`` (run by CI and the tests) fails while
this file is stale.
"""
'''


def render(root: type, *, output_module: str, output_path: Path | None = None) -> str:
    """The formatted source of the sync facade for ``root``, to live in ``output_module``."""
    twins = discover(root)
    package = (namespace_of(root).get("__name__") or root.__module__).partition(".")[0]
    ctx = _Context(Imports(output_module), twins, package)
    classes = [_class(cls, ctx, cls is root) for cls in reversed(list(twins))]
    names = sorted(twins.values())
    all_line = "__all__ = [" + ", ".join(f'"{n}"' for n in names) + "]"
    ctx.imports.use("Root", Root)
    ctx.imports.use("Twin", Twin)
    text = "\n".join(
        [
            _header(root),
            "from __future__ import annotations\n",
            ctx.imports.render(),
            "",
            all_line,
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
    from platfone_async._client import AsyncPlatfone

    return render(AsyncPlatfone, output_module=OUTPUT_MODULE, output_path=FORMAT_AS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help=f"fail if {OUTPUT.name} is stale")
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


if __name__ == "__main__":
    sys.exit(main())
