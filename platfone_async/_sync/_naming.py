"""Naming for the generated facade: the text of each type, and where it is imported from.

The facade's signatures repeat the async ones word for word, so every name they use must
be imported into the facade from a module that really has it (where it is defined or
exported, never a package that would import the facade back).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ._introspect import MISSING, CodegenError, dotted, module_ast

__all__ = ["Imports", "Rewriter"]


@dataclass
class Imports:
    """Every name the generated signatures use, and where to import it from."""

    output_module: str
    names: dict[str, tuple[str, object]] = field(default_factory=dict)  # name -> (module, obj)
    modules: dict[str, str] = field(default_factory=dict)  # alias -> module name

    def use(self, name: str, obj: object, source: str = "") -> None:
        """Import ``obj`` as ``name`` (``source``: the module whose text used it)."""
        if getattr(builtins, name, MISSING) is obj:
            return
        if isinstance(obj, ModuleType):
            self._claim(name, obj)
            self.modules[name] = obj.__name__
            return
        self._claim(name, obj)
        self.names[name] = (self._home_of(name, obj, source), obj)

    def _claim(self, name: str, obj: object) -> None:
        known = self.names.get(name, (None, MISSING))[1]
        if name in self.modules:
            known = sys.modules[self.modules[name]]
        if known is not MISSING and known is not obj:
            raise CodegenError(f"two different objects are both called {name!r}")

    def _home_of(self, name: str, obj: object, source: str) -> str:
        """The module to import ``obj`` from: where it is defined or exported, never an
        ancestor package of the output (that would be a circular import)."""
        forbidden = _ancestors(self.output_module) | {self.output_module}
        declared = getattr(obj, "__module__", None)
        if isinstance(declared, str) and declared not in forbidden:
            module = sys.modules.get(declared)
            if module is not None and getattr(module, name, MISSING) is obj:
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
            and vars(module).get(name, MISSING) is obj
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
            lines.append(f"from {_relative(modname, package)} import {', '.join(sorted(names))}")
        return "\n".join(lines)


def _defines(module: ModuleType, name: str) -> bool:
    """Whether ``module``'s own source defines ``name`` at its top level."""
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str) or not filename.endswith(".py"):
        return False
    for node in module_ast(filename).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == name:
                return True
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


def _relative(modname: str, package: str) -> str:
    """``modname`` as imported from a module of ``package``: relative within its root."""
    target, here = modname.split("."), package.split(".") if package else []
    if not here or target[0] != here[0]:
        return modname
    common = 0
    while common < min(len(target), len(here)) and target[common] == here[common]:
        common += 1
    return "." * (len(here) - common + 1) + ".".join(target[common:])


def _ancestors(modname: str) -> set[str]:
    parts = modname.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


# -- writing expressions ----------------------------------------------------------------------


class Rewriter(ast.NodeTransformer):
    """Records the imports an expression needs; rewrites ``_pkgmodule.Name`` to ``Name``."""

    def __init__(self, imports: Imports, namespace: dict[str, Any], package: str) -> None:
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
        if found is MISSING:
            raise CodegenError(f"{name!r} is not defined in {self.namespace.get('__name__')}")
        return found

    def visit_Name(self, node: ast.Name) -> ast.AST:
        self.imports.use(node.id, self.lookup(node.id), self.source)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        chain = dotted(node)
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
        return MISSING
    for node in ast.walk(module_ast(filename)):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    package = namespace.get("__package__") or ""
                    base = importlib.import_module("." * node.level + (node.module or ""), package)
                    return getattr(base, alias.name)
    return MISSING
