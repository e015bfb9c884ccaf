"""The layout keeps its promises: a thin generated facade, and contracts that see every module.

`lint-imports` (run by `.ci/run`) enforces the import contracts in pyproject.toml; these
tests make sure the contracts cannot silently miss a module added later, and that the
generated facade stays what it claims to be.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path
from typing import Any

from importlinter.api import read_configuration

import platfone_async
from platfone_async._sync import _codegen

PACKAGE = Path(platfone_async.__file__).parent


def _contract(name_start: str) -> dict[str, Any]:
    for contract in read_configuration()["contracts_options"]:
        if str(contract["name"]).startswith(name_start):
            return dict(contract)
    raise AssertionError(f"no import contract named {name_start!r}...")


def _modules(package: str, path: Path) -> set[str]:
    """The modules and subpackages directly inside ``package``."""
    return {f"{package}.{info.name}" for info in pkgutil.iter_modules([str(path)])}


def _sdk_modules() -> set[str]:
    """Every module of the SDK that a layer must place: the top level and webhooks'."""
    top = _modules("platfone_async", PACKAGE)
    return top | _modules("platfone_async.webhooks", PACKAGE / "webhooks")


def _fresh(probe: str) -> str:
    """What ``probe`` prints, run in a fresh interpreter (nothing of this one loaded)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout


def _layered() -> set[str]:
    names: set[str] = set()
    for line in _contract("Layers")["layers"]:
        names.update(part.strip() for part in line.replace("|", ":").split(":"))
    return names


def test_every_module_has_a_layer() -> None:
    """A module added to the SDK without a place in the layers contract fails here."""
    unplaced = _sdk_modules() - _layered() - {"platfone_async.webhooks"}
    assert set() == unplaced


def test_the_emulator_contract_forbids_every_private_module() -> None:
    """testing/ may import only public names: every private module is on the forbidden list."""
    private = {
        name
        for name in _sdk_modules()
        if name.rpartition(".")[2].startswith("_") and not name.endswith("__main__")
    }
    forbidden = set(_contract("The emulator")["forbidden_modules"])
    assert private == forbidden


def test_the_cli_contract_forbids_every_private_module() -> None:
    """cli/ may import only public names: every private module of the SDK and of the
    emulator is on its forbidden list."""
    private = {
        name
        for name in _sdk_modules()
        if name.rpartition(".")[2].startswith("_") and not name.endswith("__main__")
    }
    emulator = {
        name
        for name in _modules("platfone_async.testing", PACKAGE / "testing")
        if name.rpartition(".")[2].startswith("_") and not name.endswith("__main__")
    }
    forbidden = set(_contract("The command line")["forbidden_modules"])
    assert private | emulator == forbidden


def _facade() -> ast.Module:
    return ast.parse(_codegen.OUTPUT.read_text(encoding="utf-8"))


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def test_the_facade_holds_only_signatures_docstrings_and_one_line_bodies() -> None:
    """The generated file has imports, ``__all__`` and twin classes whose methods forward
    in one statement: everything else is hand-written runtime."""
    tree = _facade()
    for node in tree.body:
        if _is_docstring(node) or isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Assign):
            assert ["__all__"] == [t.id for t in node.targets if isinstance(t, ast.Name)]
            continue
        assert isinstance(node, ast.ClassDef), ast.dump(node)[:80]
        for member in node.body:
            if _is_docstring(member):
                continue
            assert isinstance(member, ast.FunctionDef), f"{node.name}: {ast.dump(member)[:80]}"
            body = [s for s in member.body if not _is_docstring(s)]
            assert 1 == len(body), f"{node.name}.{member.name} has {len(body)} statements"


def test_the_facade_imports_the_async_client_and_the_runtime_nothing_else() -> None:
    """No event loop, thread or portal machinery in the generated file: only the async
    classes, the names their signatures use, and ``_sync._runtime``."""
    machinery = {"asyncio", "threading", "anyio", "weakref", "sys"}
    sdk_private: set[str] = set()
    for node in _facade().body:
        if isinstance(node, ast.Import):
            assert set() == {alias.name.partition(".")[0] for alias in node.names} & machinery
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            assert module.partition(".")[0] not in machinery, module
            if node.level == 2:
                sdk_private.add(module)
            elif node.level == 1:
                assert "_runtime" == module, module
    assert {"_client", "_session"} <= sdk_private
    assert not any(module.startswith("_sync") for module in sdk_private)


def test_import_loads_neither_the_webhook_machinery_nor_redis() -> None:
    """``import platfone_async`` stays light: the webhook handler, events, signatures and
    the hub that wakes watchers, the Redis backend and redis itself, the session, the
    watch and the progress display load on first use (a fresh interpreter)."""
    probe = (
        "import sys, platfone_async; "
        "print(sorted(m for m in sys.modules if m.startswith(('platfone_async.webhooks', "
        "'platfone_async._ratelimit._redis', 'redis', 'platfone_async._sync', "
        "'platfone_async._session', 'platfone_async._progress', 'platfone_async._watch'))))"
    )
    out = _fresh(probe)
    assert "[]" == out.strip()


def test_import_loads_nothing_of_the_dependencies_beyond_what_importing_them_does() -> None:
    """After ``import httpx, attrs, cattrs, anyio``, ``import platfone_async`` adds only
    its own modules and standard-library ones: anyio's event-loop core, its lowlevel and
    to_thread load with the first call that needs them (a fresh interpreter)."""
    probe = (
        "import sys; import httpx, attrs, cattrs, anyio; before = set(sys.modules); "
        "import platfone_async; "
        "print(sorted(m for m in set(sys.modules) - before if not m.startswith('platfone_async')"
        " and m.partition('.')[0].lstrip('_') not in sys.stdlib_module_names))"
    )
    out = _fresh(probe)
    assert "[]" == out.strip()


def test_reconciliation_and_snapshots_load_when_first_used() -> None:
    """Reading needs neither the reconciliation machinery nor the limiters' snapshot
    classes; the first order loads the one, ``rate_limit_state()`` the other (a fresh
    interpreter, against the in-process emulator)."""
    probe = """
import sys, anyio
import platfone_async
from platfone_async.testing import PlatfoneEmulator, Offer

def loaded():
    names = ("platfone_async._reconcile", "platfone_async._ratelimit._state")
    return [name for name in names if name in sys.modules]

async def main():
    emulator = PlatfoneEmulator(success_rate_check=False)
    emulator.catalog.set_offers("telegram", "uk", [Offer(10, 0.8, 5)])
    async with emulator.client(success_rate_guard="off") as client:
        print(loaded())
        await client.get_balance()
        print(loaded())
        await client.create_activation("telegram", "uk")
        print(loaded())
        await client.rate_limit_state()
        print(loaded())

anyio.run(main)
"""
    out = _fresh(probe).split("\n")
    assert [
        "[]",
        "[]",
        "['platfone_async._reconcile']",
        "['platfone_async._reconcile', 'platfone_async._ratelimit._state']",
    ] == out[:4]


def test_a_watcher_started_before_any_webhook_machinery_is_woken_once_a_handler_attaches() -> None:
    """The hubs load with the first handler; a watcher that began before then joins its
    client's hub at its next poll, and from then on a push wakes it (a fresh interpreter,
    virtual time: polls at 0 s and 600 s, handler at 10 s, SMS at 700 s)."""
    probe = """
import sys, anyio
from platfone_async.testing import Offer, PlatfoneEmulator, VirtualClock

async def main():
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock, success_rate_check=False, rate_limits=None)
    emulator.catalog.set_offers("telegram", "uk", [Offer(100, 0.8, 5)])
    async with clock.autojump(), emulator.client(rate_limits=None, max_retries=0) as client:
        activation = await client.create_activation("telegram", "uk")
        start = clock.time()
        done = []

        async def watch():
            async for state in client.watch_activation(activation, interval=600):
                done.append((round(clock.time() - start), state.sms_code))

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await clock.sleep(10)
            print("platfone_async.webhooks._push" in sys.modules)
            from platfone_async.webhooks import WebhookHandler

            handler = WebhookHandler("whsec-late")
            handler.attach(client)
            emulator.configure_webhooks(app=handler.asgi_app(), secret="whsec-late")
            async with emulator.webhooks.running():
                await clock.sleep(690)
                emulator.deliver_sms(activation.activation_id, "5150")
                with anyio.fail_after(300):
                    while len(done) < 2:
                        await clock.sleep(1)
        print(done, emulator.request_count("get_activation"))

anyio.run(main)
"""
    out = _fresh(probe).split("\n")
    assert ["False", "[(0, None), (700, '5150')] 3"] == out[:2]


def test_models_but_the_activation_load_when_first_used() -> None:
    """The catalog, price, report, balance and page models and catalog search load on
    the first call that needs them, and say ``platfone_async`` whichever way they were
    first reached: a call, the public name, or a pickle (a fresh interpreter, against
    the emulator)."""
    probe = """
import pickle, sys, anyio
import platfone_async
from platfone_async.testing import PlatfoneEmulator

def loaded():
    names = ("_account", "_catalog", "_page", "_reports")
    found = [name for name in names if "platfone_async._models." + name in sys.modules]
    return found + ["_find"] * ("platfone_async._find" in sys.modules)

async def main():
    emulator = PlatfoneEmulator(success_rate_check=False)
    async with emulator.client(success_rate_guard="off") as client:
        print(loaded(), "Country" in dir(platfone_async), "Platfone" in dir(platfone_async))
        page = await client.get_activation_history()
        print(loaded(), type(page).__module__)
        balance = await client.get_balance()
        print(loaded(), type(balance).__module__)
        country = (await client.get_countries())[0]
        print(loaded(), type(country).__module__, repr(country).startswith("Country("))
        match = (await client.find_country(country.country_id))[0]
        print(loaded(), type(match).__module__)
    print(pickle.loads(pickle.dumps(country)) == country, pickle.loads(pickle.dumps(page)) == page)

anyio.run(main)
print(platfone_async.Report.__module__, loaded())
"""
    out = _fresh(probe).split("\n")
    assert [
        "[] True True",
        "['_page'] platfone_async",
        "['_account', '_page'] platfone_async",
        "['_account', '_catalog', '_page'] platfone_async True",
        "['_account', '_catalog', '_page', '_find'] platfone_async",
        "True True",
        "platfone_async ['_account', '_catalog', '_page', '_reports', '_find']",
    ] == out[:7]


def test_public_webhook_classes_show_their_public_path() -> None:
    """Every class ``platfone_async.webhooks`` exports says so in its ``__module__``."""
    import platfone_async.webhooks as webhooks

    private = [
        name
        for name in webhooks.__all__
        if isinstance(getattr(webhooks, name), type)
        and getattr(webhooks, name).__module__.startswith("platfone_async.webhooks.")
    ]
    assert [] == private
