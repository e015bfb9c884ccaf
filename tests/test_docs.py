"""The README is a front page whose set-up commands are the ones CI and the docs use."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def console_commands(markdown: str) -> list[str]:
    """The commands of every ```console block, in order."""
    blocks = re.findall(r"```console\n(.*?)```", markdown, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_readme_is_a_front_page() -> None:
    """At most ~20 KB, with links into the docs for what left it."""
    assert len(README.encode()) <= 20_000
    for page in ("getting-started.md", "guides/reliability.md", "guides/troubleshooting.md"):
        assert f"docs/{page}" in README
        assert (ROOT / "docs" / page).is_file()


def test_the_two_set_up_commands_are_the_demo_and_the_tests() -> None:
    """The first installs and runs the demo, the second installs the dev extra and tests."""
    demo, tests = console_commands(README)[:2]
    assert demo.endswith("&& .venv/bin/python -m platfone_async demo")
    assert "pip install -e '.[dev]'" in tests
    assert tests.endswith("&& .venv/bin/python -m pytest")


def test_ci_runs_the_readmes_test_command() -> None:
    """.ci/run installs at least the README's extras and runs its pytest line as it is."""
    _, tests = console_commands(README)[:2]
    install, run = (step.strip() for step in tests.split("&&")[1:])
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert run in ci
    [ci_install] = [line for line in ci if "pip install" in line and " -e " in line]
    wanted = shlex.split(install)[-1]  # '.[dev]'
    got = shlex.split(ci_install)[-1]  # '.[dev,docs]'
    assert set(wanted[2:-1].split(",")) <= set(got[2:-1].split(","))


def test_getting_started_gives_the_same_two_commands() -> None:
    """The docs' getting-started page repeats the README's commands word for word."""
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    for command in console_commands(README)[:2]:
        assert command in page


def test_the_api_reference_documents_every_public_name() -> None:
    """Each name in ``platfone_async.__all__`` has its entry in docs/reference/."""
    import platfone_async

    reference = "".join(
        page.read_text(encoding="utf-8") for page in (ROOT / "docs" / "reference").glob("*.md")
    )
    documented = set(re.findall(r"^::: platfone_async\.(\w+)$", reference, flags=re.M))
    constants = {"__version__", "PRODUCTION_URL", "SANDBOX_URL"}
    assert set() == set(platfone_async.__all__) - constants - documented
