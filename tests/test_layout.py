"""The layout keeps its promises: a thin generated facade, and contracts that see every module.

`lint-imports` (run by `.ci/run`) enforces the import contracts in pyproject.toml; these
tests make sure the contracts cannot silently miss a module added later, that the
generated facade stays what it claims to be, and that `import platfone_async` defers only
what it says it does (and why).
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


#: What ``platfone_async`` loads only with the first use of one of its names, and why:
#: each brings in more than a few milliseconds a program may never need.
LOADED_ON_USE = {
    "Platfone": "asyncio and anyio's thread portal",
    "SyncActivationSession": "asyncio and anyio's thread portal",
    "RedisBackend": "anyio's worker threads (redis itself with its first connection)",
    "SQLiteBackend": "sqlite3 and anyio's worker threads",
    **dict.fromkeys(
        [
            "CatalogMatch",
            "Offer",
            "Country",
            "CountryPrice",
            "CountryPrices",
            "Price",
            "PriceInfo",
            "Quality",
            "Service",
            "ServicePrice",
            "ServicePrices",
            "Report",
            "ReportReason",
            "ReportResult",
        ],
        "the catalog and report models, catalog search and offers: ~10 ms together",
    ),
    "OpenActivation": "crash recovery, and the reconciliation it matches flights with: ~6 ms",
}

#: The imports inside functions the SDK keeps, by module: each loads something heavy or
#: optional that a program may never need (the CLI, the emulator and the generator,
#: which are programs of their own, are not counted).
DEFERRED_IMPORTS = {
    "_client": {
        "._ratelimit._sqlite",  # PLATFONE_STATE_URL
        "._ratelimit._redis",  # PLATFONE_STATE_URL
        # The methods that need them: what LOADED_ON_USE's catalog and report names load.
        "._models._catalog",
        "._models._reports",
        "._find",
        "._offers",
        "._recover",  # recover(), open_activations(), recover_orphans: as OpenActivation
    },
    # The order book, made on the first order: a client that only reads never loads it.
    "_orders": {"._reconcile"},
    "_ratelimit._redis": {"asyncio", "redis", "redis.asyncio", "redis.exceptions"},
    "_ratelimit._wait": {"asyncio", "trio"},  # whichever loop is running: loaded already
    # To go with the rewrite of _watch: the push hub is on the client, the display light.
    "_watch": {".webhooks._push", "._progress"},
}


def _sdk_files() -> list[Path]:
    skipped = ("testing", "cli")
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in skipped
        and path.name not in ("_codegen.py", "_facade.py")
    ]


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def test_only_the_package_loads_names_on_use_and_only_those_it_lists() -> None:
    """No module of the SDK but the package itself has a module ``__getattr__``, and it
    loads on use exactly the names whose cost it explains."""
    loaders = [
        _module_name(path)
        for path in _sdk_files()
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
    ]
    assert ["__init__"] == loaders
    assert set(LOADED_ON_USE) == set(platfone_async._LOADED_ON_USE)


def test_sdk_modules_import_what_they_use_at_the_top() -> None:
    """An import inside a function of the SDK is one of the few listed, each of
    something heavy or optional: a module deferred to save a millisecond fails here."""
    deferred: dict[str, set[str]] = {}
    for path in _sdk_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    name = "." * inner.level + (inner.module or "")
                    deferred.setdefault(_module_name(path), set()).add(name)
                elif isinstance(inner, ast.Import):
                    names = {alias.name for alias in inner.names}
                    deferred.setdefault(_module_name(path), set()).update(names)
    assert DEFERRED_IMPORTS == deferred


def test_import_loads_none_of_what_the_names_loaded_on_use_bring() -> None:
    """``import platfone_async`` loads no event loop library, no sync facade, no shared
    store, no CLI extra and none of the webhook handler (a fresh interpreter, as a base
    install: httpx imports rich for its own command line wherever click is importable)."""
    probe = (
        "import sys; sys.modules['click'] = None; import platfone_async; "
        "print(sorted(m for m in sys.modules if m.partition('.')[0] in "
        "('asyncio', 'trio', 'sqlite3', 'redis', 'rich', 'uvicorn') or m in "
        "('anyio.from_thread', 'anyio.to_thread', 'platfone_async._sync', "
        "'platfone_async._ratelimit._redis', 'platfone_async._ratelimit._sqlite', "
        "'platfone_async._models._catalog', 'platfone_async._models._reports', "
        "'platfone_async._find', 'platfone_async._offers', 'difflib', "
        "'platfone_async._recover', 'platfone_async._reconcile', "
        "'platfone_async.webhooks._handler', 'platfone_async.testing', 'platfone_async.cli')))"
    )
    out = _fresh(probe)
    assert "[]" == out.strip()


def test_a_name_loaded_on_use_is_the_class_it_names_under_the_public_path() -> None:
    """Each name loaded on use is there once asked for, shows ``platfone_async`` as its
    module, and is listed by ``dir()`` before (a fresh interpreter)."""
    probe = (
        "import platfone_async as pf; "
        f"names = {sorted(LOADED_ON_USE)!r}; "
        "print(all(n in dir(pf) for n in names), "
        "sorted({getattr(pf, n).__module__ for n in names}))"
    )
    assert "True ['platfone_async']" == _fresh(probe).strip()


def test_what_a_method_loads_first_shows_the_public_path_and_pickles_by_it() -> None:
    """A catalog match, an offer, a catalog model and a report reason that client methods
    return before their names were asked of the package show ``platfone_async`` as their
    module and pickle by it (a fresh interpreter, a scripted transport)."""
    probe = """
import pickle, anyio, httpx, platfone_async as pf

PRICE = {"min": 10, "max": 20, "suggested": 15}
BODIES = {
    "/activation/countries": [{"country_id": "uk", "name": "United Kingdom"}],
    "/activation/prices/services": [{"service_id": "telegram", "countries": [
        {"country_id": "uk", "price": PRICE, "quality": {"avg": 0.8}, "count": 5}]}],
    "/activation/a1/report/reasons": [{"reason_id": 1, "reason_name": "No SMS"}],
}

def answer(request):
    return httpx.Response(200, json=BODIES[request.url.path.removeprefix("/api/v1")])

async def main():
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with pf.AsyncPlatfone("key", http_client=http, rate_limits=None) as client:
        [match] = await client.find_country("uk")
        [offer] = await client.rank_offers("telegram")
        [reason] = await client.get_report_reasons("a1")
    names = ("CatalogMatch", "Offer", "Country", "ReportReason")
    print([n for n in names if n in vars(pf)])
    found = [match, offer, match.item, reason]
    print(sorted({type(o).__module__ for o in found}))
    print([pickle.loads(pickle.dumps(o)) == o for o in found])

anyio.run(main)
"""
    out = _fresh(probe).split("\n")
    assert ["[]", "['platfone_async']", "[True, True, True, True]"] == out[:3]


def test_a_watcher_started_before_any_handler_is_woken_once_one_attaches() -> None:
    """A client's hub is made with its first handler; a watcher that began before then
    joins it at its next poll, and from then on a push wakes it (a fresh interpreter, no
    hub made before; virtual time: polls at 0 s and 600 s, handler at 10 s, SMS at 700 s)."""
    probe = """
import anyio
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
    assert ["[(0, None), (700, '5150')] 3"] == out[:1]


def test_public_classes_show_the_public_path_and_pickle_by_it() -> None:
    """Every class ``platfone_async`` exports says ``platfone_async`` in its
    ``__module__``, and a model pickles and unpickles by that path."""
    import pickle

    classes = [
        getattr(platfone_async, name)
        for name in platfone_async.__all__
        if isinstance(getattr(platfone_async, name), type)
    ]
    assert [] == [cls.__qualname__ for cls in classes if cls.__module__ != "platfone_async"]
    country = platfone_async.Country("uk", "United Kingdom", alt_name=None)
    page = platfone_async.Page(items=[country], page=1, limit=10, pages=1, total=1)
    assert page == pickle.loads(pickle.dumps(page))


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
