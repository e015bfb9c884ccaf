"""The public surface: __all__ is complete and every public class shows its public path."""

from __future__ import annotations

import inspect

import platfone_async


def test_all_is_complete_and_importable() -> None:
    """Every name in __all__ exists, and every public class is listed."""
    for name in platfone_async.__all__:
        assert hasattr(platfone_async, name), name
    public_classes = {
        name
        for name, obj in vars(platfone_async).items()
        if inspect.isclass(obj) and not name.startswith("_")
    }
    assert set() == public_classes - set(platfone_async.__all__)


def test_public_classes_have_public_module() -> None:
    """Reprs and docs show platfone_async.X, not a private module."""
    for name in platfone_async.__all__:
        obj = getattr(platfone_async, name)
        if inspect.isclass(obj) and obj.__module__.startswith("platfone_async"):
            assert "platfone_async" == obj.__module__, name


def test_every_endpoint_method_is_documented() -> None:
    """Each public method of AsyncPlatfone has a docstring."""
    for name, member in inspect.getmembers(platfone_async.AsyncPlatfone):
        if not name.startswith("_") and callable(member):
            assert member.__doc__, name


def test_the_limits_snapshot_classes_show_their_public_path_however_reached() -> None:
    """``rate_limit_state()`` loads them before anyone names them: still platfone_async.X,
    and a snapshot pickles through the public path."""
    import pickle

    from platfone_async._ratelimit import _state

    state = _state.SlotsState(
        capacity=20,
        effective_capacity=20,
        external=0,
        in_use=1,
        bound=1,
        available=19,
        waiters=0,
        next_expiry_in=None,
    )
    assert repr(state).startswith("SlotsState(")
    assert "platfone_async" == type(state).__module__
    assert state == pickle.loads(pickle.dumps(state))
    assert platfone_async.SlotsState is _state.SlotsState
