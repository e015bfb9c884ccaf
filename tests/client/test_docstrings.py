"""The public methods' docstrings are an API reference: what they return, raise, and how."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from platfone_async import ActivationSession, AsyncPlatfone, Platfone

# Closing raises nothing a caller should expect.
NOTHING_TO_RAISE = {"aclose"}


def public_methods(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    """The methods a user calls: no dunders, no properties."""
    return [
        (name, member)
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]


METHODS = [
    pytest.param(cls, name, method, id=f"{cls.__name__}.{name}")
    for cls in (AsyncPlatfone, ActivationSession)
    for name, method in public_methods(cls)
]


def test_every_public_method_is_checked() -> None:
    """The list below covers the endpoints and the session, so none slips through."""
    names = {p.id for p in METHODS}
    assert {"AsyncPlatfone.create_activation", "AsyncPlatfone.iter_reports"} <= names
    assert {"ActivationSession.wait_for_sms", "ActivationSession.report"} <= names


@pytest.mark.parametrize(("cls", "name", "method"), METHODS)
def test_a_method_says_what_it_returns_raises_and_shows_an_example(
    cls: type, name: str, method: Callable[..., Any]
) -> None:
    """Returns/Yields unless it returns None, Raises (but for closing), and an example."""
    doc = inspect.getdoc(method) or ""
    returns_none = inspect.signature(method).return_annotation in (None, "None")
    if not returns_none:
        assert "\nReturns:\n" in doc or "\nYields:\n" in doc, f"{name}: no Returns/Yields"
    if name not in NOTHING_TO_RAISE:
        assert "\nRaises:\n" in doc, f"{name}: no Raises"
    assert "\nExamples:\n    >>> " in doc, f"{name}: no example"


def test_reconciliation_is_explained_in_the_guide_and_linked() -> None:
    """create_activation links the reliability guide instead of retelling reconciliation."""
    doc = inspect.getdoc(AsyncPlatfone.create_activation) or ""
    assert "reliability.md#reconciliation" in doc
    assert "clock-skew" not in doc  # the mechanism lives in the guide


def test_the_sync_twin_reads_in_sync_terms() -> None:
    """The generated Platfone's examples have no await (the facade rewrites them)."""
    doc = inspect.getdoc(Platfone.wait_for_sms) or ""
    assert "\nExamples:\n" in doc
    assert "await" not in doc
