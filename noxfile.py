"""Developer and CI sessions. Every install goes through constraints.txt (it pins torch).

``nox`` runs the default sessions (what CI runs); ``nox -s demo`` trains the demo;
``nox -s bench`` runs the benchmarks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
CORE = str(ROOT / "core")
PLUGINS = {
    "simple-tensor": str(ROOT / "plugins" / "simple-tensor"),
    "gunpowder": str(ROOT / "plugins" / "gunpowder"),
    "distributed": str(ROOT / "plugins" / "distributed"),
}
TEST_TOOLS = ("pytest", "hypothesis", "hatchling")
# Writes containers the way DaCapo does in the DaCapo-compatibility tests (0.6 is the last
# release for zarr 2; with zarr 3 the tests write the same layout with zarr directly).
FUNLIB_PERSISTENCE = "funlib.persistence>=0.6,<0.7"
# The core's tests that train with a plugin; they run in that plugin's session.
CORE_PLUGIN_TESTS = "tests/core/test_dacapo_plugins.py"

nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "tests-zarr3",
    "tests-simple-tensor",
    "tests-gunpowder",
    "tests-distributed",
    "scaffold",
    "docs",
]
nox.options.error_on_missing_interpreters = True


def install(session: nox.Session, *packages: str) -> None:
    """pip install through the constraints file."""
    session.install(*CONSTRAINTS, *packages)


def existing_plugins(*names: str) -> list[str]:
    """Folders of the named plugins that exist in this checkout."""
    return [PLUGINS[name] for name in names if Path(PLUGINS[name], "pyproject.toml").exists()]


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    install(session, "ruff==0.17.6")  # pinned: lint results must not change under us
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy (strict) on the core."""
    install(session, "mypy==2.4.1", CORE, "types-PyYAML", "pytest")  # pytest: the kit
    session.run("mypy", "core/src/dacapo_trainers")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The core alone, in a fresh venv (zarr 2.18)."""
    install(session, CORE, "zarr>=2.18,<3", FUNLIB_PERSISTENCE, *TEST_TOOLS)
    session.run("pytest", "tests/core", *session.posargs)


@nox.session(name="tests-zarr3", python="3.11")
def tests_zarr3(session: nox.Session) -> None:
    """The core alone with zarr 3."""
    install(session, CORE, "zarr>=3", *TEST_TOOLS)
    session.run("pytest", "tests/core", *session.posargs)


@nox.session(name="tests-simple-tensor", python="3.11")
def tests_simple_tensor(session: nox.Session) -> None:
    """Core + the simple-tensor plugin alone."""
    install(session, CORE, *existing_plugins("simple-tensor"), *TEST_TOOLS)
    session.run("pytest", "plugins/simple-tensor/tests", CORE_PLUGIN_TESTS, *session.posargs)


@nox.session(name="tests-gunpowder", python="3.11")
def tests_gunpowder(session: nox.Session) -> None:
    """Core + the gunpowder plugin alone."""
    install(session, CORE, *existing_plugins("gunpowder"), *TEST_TOOLS)
    session.run("pytest", "plugins/gunpowder/tests", CORE_PLUGIN_TESTS, *session.posargs)


@nox.session(name="tests-distributed", python="3.11")
def tests_distributed(session: nox.Session) -> None:
    """Core + the distributed plugin + simple-tensor (its inner trainer in the tests)."""
    plugins = existing_plugins("distributed", "simple-tensor")
    install(session, CORE, *plugins, *TEST_TOOLS)
    session.run("pytest", "plugins/distributed/tests", *session.posargs)


@nox.session(name="tests-dacapo", python="3.11")
def tests_dacapo(session: nox.Session) -> None:
    """Not in the default list: DaCapo 0.3.5 itself writes the files our tests emulate.

    Installs dacapo-ml 0.3.5 (heavy) next to the core and runs the DaCapo-compatibility tests
    with DACAPO_ML=1, which adds the checks against DaCapo's own converter and objects.
    """
    install(session, CORE, "dacapo-ml==0.3.5", *TEST_TOOLS)
    session.run("pytest", "tests/core/test_dacapo_ml.py", *session.posargs, env={"DACAPO_ML": "1"})


@nox.session(python="3.11")
def scaffold(session: nox.Session) -> None:
    """A plugin written by `dacapo-trainers new-plugin`: installs, passes its tests, is listed."""
    install(session, CORE, "pytest", "hatchling")
    package = Path(session.create_tmp()) / "scaffolded-trainer"
    if package.exists():
        shutil.rmtree(package)
    session.run("dacapo-trainers", "new-plugin", "scaffolded-trainer", "--dir", str(package))
    install(session, str(package))
    with session.chdir(package):
        session.run("pytest", "-p", "no:cacheprovider", "-rs", *session.posargs)
    listed = session.run("dacapo-trainers", "plugins", silent=True) or ""
    if "ScaffoldedTrainerConfig" not in listed:
        session.error(f"dacapo-trainers plugins does not list ScaffoldedTrainerConfig:\n{listed}")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Sphinx with -W (warnings fail) and the doctests of the docs' code blocks."""
    install(
        session,
        CORE,
        *existing_plugins("simple-tensor", "gunpowder", "distributed"),
        "sphinx",
        "pytest",
    )
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "doctest", "docs", "docs/_build/doctest"
    )


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The README's first command: install, make demo data, train, leave outputs in runs/."""
    install(session, CORE, *existing_plugins("simple-tensor", "gunpowder"))
    session.run("dacapo-trainers", "demo", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks (not timed tests): ratios measured side by side in one run."""
    install(
        session, CORE, *existing_plugins("simple-tensor", "gunpowder", "distributed"), "hatchling"
    )
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run(
            "python", str(script), "--json", str(out / f"{script.stem}.json"), *session.posargs
        )
