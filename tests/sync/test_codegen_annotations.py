"""The facade generator reads names a module imports only for type checking: the async
client names the models it loads on first use that way, and their twins still need them."""

from __future__ import annotations

import collections.abc
import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from platfone_async._sync import _codegen
from platfone_async._sync._introspect import namespace_of

CLIENT = '''
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import collections.abc as cabc

    from missing_extra_for_the_test import Nope
    from .models import Thing


class AsyncClient:
    """A client."""

    async def get(self) -> Thing:
        """Get the thing."""
        from .models import Thing

        return Thing()

    async def names(self) -> cabc.Sequence[str]:
        """Some names."""
        return []

    async def aclose(self) -> None:
        """Close it."""
'''


@pytest.fixture
def package(tmp_path: Path) -> Iterator[ModuleType]:
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "models.py").write_text("class Thing:\n    pass\n")
    (root / "client.py").write_text(textwrap.dedent(CLIENT))
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("lazypkg.client")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "lazypkg" or m.startswith("lazypkg.")]:
            del sys.modules[name]


def test_names_imported_for_type_checking_resolve_and_missing_ones_are_left_out(
    package: ModuleType,
) -> None:
    assert "Thing" not in vars(package)  # nothing is imported at run time
    namespace = namespace_of(package.AsyncClient)
    assert sys.modules["lazypkg.models"].Thing is namespace["Thing"]
    assert collections.abc is namespace["cabc"]
    assert "Nope" not in namespace  # an extra not installed: left out, no error
    assert namespace["AsyncClient"] is package.AsyncClient  # the globals are all there


def test_the_generated_twin_imports_a_type_checking_name_from_its_home(
    package: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "lazypkg_sync.py"
    text = _codegen.render(package.AsyncClient, output_module="lazypkg_sync", output_path=path)
    assert "from lazypkg.models import Thing" in text
    assert "def get(self) -> Thing:" in text
    assert "def names(self) -> cabc.Sequence[str]:" in text
