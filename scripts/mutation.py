"""Mutation testing of the money-critical modules: which small breakages no test notices.

    python scripts/mutation.py                   # every module below (minutes)
    python scripts/mutation.py --quick           # webhook verification only (about 30 s)
    python scripts/mutation.py --module _session --show   # one module, with each diff

mutmut (a dev dependency) makes small changes ("mutants") to one function at a time -
``<`` for ``<=``, ``and`` for ``or``, a constant off by one, a call dropped - and runs the
tests that reach that function. A mutant no test fails on ("survived") is a breakage the
suite would not catch. The run happens in a scratch copy of the repository (mutmut writes
its ``mutants/`` tree there), so the work tree is never touched.

Not a CI gate - survivors are leads to read, and some are harmless (a message's wording,
an equivalent mutant). Prints the survivors, a table per module, then one JSON object on
its last line like the benchmarks do. docs/contributing/performance.md quotes a full run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SESSION_TESTS = [
    "tests/session/test_session.py",
    "tests/session/test_ordering.py",
    "tests/session/test_settle.py",
    "tests/session/test_notices.py",
]
#: module -> the tests that pin it (the run uses the union; mutmut then runs, for each
#: mutant, only the selected tests that reached its function).
MODULES: dict[str, list[str]] = {
    "webhooks/_signature": ["tests/webhooks/test_verify.py", "tests/webhooks/test_handler.py"],
    "_ratelimit/_window": ["tests/limits/test_windows.py", "tests/limits/test_keys.py"],
    "_session": SESSION_TESTS,
    "_settle": SESSION_TESTS,
    "_reconcile": ["tests/orders/test_reconcile.py"],
    "_orders": [
        "tests/orders/test_reconcile.py",
        *SESSION_TESTS,
        "tests/client/test_retry_policy.py",
    ],
}
QUICK = ["webhooks/_signature"]

#: "  platfone_async._session.xǁActivationSessionǁcancel__mutmut_3: survived" (a method),
#: "  platfone_async._watch.x_check_interval__mutmut_1: killed" (a function)
_RESULT = re.compile(r"^\s*((platfone_async\.[\w.]+?)\.x_?(\w+?)__mutmut_\d+): ([\w ]+?)\s*$")
#: Verdicts of mutants whose tests ran (the rest: not run, no test reaches it, skipped).
_TESTED = ("killed", "timeout", "survived", "suspicious")


def _scratch_copy(modules: list[str], into: Path) -> None:
    """The package, the tests and a pyproject.toml with the mutmut section, in ``into``."""
    for name in ("platfone_async", "tests"):
        shutil.copytree(
            ROOT / name, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    tests = sorted({test for module in modules for test in MODULES[module]})
    section = {
        "source_paths": ["platfone_async"],
        "only_mutate": [f"platfone_async/{module}.py" for module in modules],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", "-x", "-n", "0"],
        # A mutant that makes a test spin (a limiter that never grants on a virtual
        # clock) is stopped at a few times the tests' own time and counts as killed.
        "timeout_multiplier": 3.0,
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {json.dumps(val)}" for key, val in section.items()]
    text = (ROOT / "pyproject.toml").read_text()
    (into / "pyproject.toml").write_text(text + "\n".join(lines) + "\n")


def _mutmut(args: list[str], cwd: Path, timeout: float) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"mutmut {args[0]} failed ({done.returncode})")
    return done.stdout


def _run_bounded(args: list[str], cwd: Path, timeout: float) -> bool:
    """``mutmut run`` for at most ``timeout`` seconds; False if it was stopped then (the
    mutants it finished keep their verdicts, the rest count as not run)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mutmut", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: stopping it stops its workers
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=30)
        return False
    if process.returncode != 0:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"mutmut run failed ({process.returncode})")
    return True


def _module_of(dotted: str) -> str:
    return dotted.removeprefix("platfone_async.").replace(".", "/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="webhook verification only")
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="repeatable")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--max-children", type=int, default=None, help="parallel mutants")
    parser.add_argument(
        "--timeout", type=float, default=900, help="stop after this many seconds (900)"
    )
    args = parser.parse_args(argv)
    modules = args.module or (QUICK if args.quick else list(MODULES))

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="platfone-mutation-") as scratch:
        work = Path(scratch)
        _scratch_copy(modules, work)
        run = ["run"]
        if args.max_children is not None:
            run += ["--max-children", str(args.max_children)]
        finished = _run_bounded(run, work, args.timeout)
        results = _mutmut(["results", "--all", "true"], work, 120)
        found = [m.groups() for line in results.splitlines() if (m := _RESULT.match(line))]
        survivors = [name for name, _, _, status in found if status == "survived"]
        diffs = {name: _mutmut(["show", name], work, 60) for name in survivors} if args.show else {}
    elapsed = time.monotonic() - started

    per_module: dict[str, Counter[str]] = {module: Counter() for module in modules}
    per_function: Counter[str] = Counter()
    for _, dotted, function, status in found:
        per_module.setdefault(_module_of(dotted), Counter())[status] += 1
        if status == "survived":
            per_function[f"{_module_of(dotted)}.{function.replace('ǁ', '.').strip('.')}"] += 1

    print("survivors (no selected test fails on them), by function:")
    for function, count in sorted(per_function.items()):
        print(f"  {count:3d}  {function}")
    for name in survivors:
        if args.show:
            print(diffs[name].rstrip())
    print()
    print(f"{'module':24} {'mutants':>8} {'killed':>7} {'survived':>9} {'other':>6} {'score':>6}")
    totals: Counter[str] = Counter()
    for module, counts in per_module.items():
        total = sum(counts.values())
        killed = counts["killed"] + counts["timeout"]
        tested = sum(counts[verdict] for verdict in _TESTED)
        other = total - tested
        score = 100 * killed / tested if tested else 0.0
        survived = counts["survived"]
        print(f"{module:24} {total:8d} {killed:7d} {survived:9d} {other:6d} {score:5.1f}%")
        totals.update(counts)
    total = sum(totals.values())
    killed = totals["killed"] + totals["timeout"]
    tested = sum(totals[verdict] for verdict in _TESTED)
    stopped = "" if finished else f", stopped at --timeout {args.timeout:g}"
    print(f"({elapsed:.0f} s{stopped}; score: killed (timeouts included) of the mutants tested;")
    print(" other: not run, or no selected test reaches the function)")
    summary = {
        "modules": modules,
        "mutants": total,
        "killed": killed,
        "survived": totals["survived"],
        "tested": tested,
        "score": round(100 * killed / tested, 1) if tested else 0.0,
        "per_module": {m: dict(c) for m, c in per_module.items()},
        "seconds": round(elapsed, 1),
        "finished": finished,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
