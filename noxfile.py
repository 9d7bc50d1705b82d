"""Developer and CI sessions. Every install goes through constraints.txt (it pins torch).

``nox`` runs the default sessions (what CI runs); ``nox -s demo`` trains the demo;
``nox -s bench`` runs the benchmarks; ``nox -s dacapo-parity`` compares batches with DaCapo 0.3.5.
"""

from __future__ import annotations

import os
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
# jsonschema: the schema tests validate files as editors do.
TEST_TOOLS = ("pytest", "pytest-xdist", "hypothesis", "hatchling", "jsonschema")
# Tests run in parallel processes, one per core (at most 4): most of their time is spent
# starting training subprocesses and waiting on them (2-core CI: 12 -> 7 minutes for the core).
PARALLEL = ("-n", "auto", "--maxprocesses", "4")
# The core with its TensorBoard extra: the tests read the event files back with its reader.
CORE_TENSORBOARD = f"{CORE}[tensorboard]"
# ... and its bioimageio and remote extras, for the core's own session: bioimageio.core's model
# test checks the exported packages; the remote-data tests read from a local S3 server.
CORE_TESTED = f"{CORE}[tensorboard,bioimageio,remote]"
# Writes containers the way DaCapo does in the DaCapo-compatibility tests (0.6 is the last
# release for zarr 2; with zarr 3 the tests write the same layout with zarr directly).
FUNLIB_PERSISTENCE = "funlib.persistence>=0.6,<0.7"
# The core's tests that train with a plugin; they run in that plugin's session.
CORE_PLUGIN_TESTS = (
    "tests/core/dacapo_compat/test_dacapo_plugins.py",
    "tests/core/arrays/test_remote_training.py",
    "tests/core/dacapo_compat/test_dacapo_main.py",
    "tests/core/run/test_iterable_dataset.py",
    "tests/core/docs/test_docs_iterable_dataset.py",
    "tests/core/scaffold/test_scaffold_base.py",
)
# Data at URLs: the core's remote extra, and a real S3 server on loopback for the tests (moto's
# server mode); aiobotocore[boto3] pins a boto3 that s3fs's botocore accepts (without it pip
# backtracks through boto3 versions for a long time).
CORE_REMOTE = f"{CORE}[remote]"
REMOTE_TEST_TOOLS = ("moto[server]", "aiobotocore[boto3]")

# What CI runs. Every venv installs torch (about a minute of the run each), so sessions whose
# install sets grow one into the next share one venv, in that order: each step runs before the
# next step's packages are installed, so it sees exactly what its own session would install
# (each plugin still alone with the core). The single sessions stay for focused runs.
nox.options.sessions = [
    "lint",
    "typecheck-docs",  # typecheck, then docs
    "tests",
    "zarr3",  # tests-zarr3, then tests-simple-tensor with zarr 3, then tests-distributed
    "tests-simple-tensor(zarr='2')",
    "tests-gunpowder",
    "docs-core-scaffold",  # docs-core, then scaffold
]
nox.options.error_on_missing_interpreters = True

# pip compiles every module it installs to bytecode (most of torch's install time), while the
# tests import a small part of it: installs skip that, and Python compiles and caches what is
# imported, which it only does where PYTHONDONTWRITEBYTECODE is unset.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def install(session: nox.Session, *packages: str) -> None:
    """pip install through the constraints file (without compiling to bytecode, see above)."""
    session.install("--no-compile", *CONSTRAINTS, *packages)


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
    """mypy (strict) on the core and on each plugin, with their dependencies installed (torch,
    gunpowder) so that mypy sees what they really return."""
    plugins = existing_plugins("simple-tensor", "gunpowder", "distributed")
    install(session, "mypy==2.4.1", CORE, *plugins, "types-PyYAML", "pytest")  # pytest: the kit
    sources = [str(Path(plugin, "src")) for plugin in plugins]
    session.run("mypy", str(ROOT / "core" / "src" / "dacapo_trainers"), *sources)


@nox.session(name="typecheck-docs", python="3.11")
def typecheck_docs(session: nox.Session) -> None:
    """typecheck, then docs in the same venv (a superset of typecheck's)."""
    typecheck(session)
    docs(session)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The core alone, in a fresh venv (zarr 2.18)."""
    install(
        session,
        CORE_TESTED,
        "zarr>=2.18,<3",
        FUNLIB_PERSISTENCE,
        *TEST_TOOLS,
        *REMOTE_TEST_TOOLS,
    )
    # DaCapo-style containers are written with funlib's prepare_ds here, never emulated.
    session.run(
        "pytest",
        *PARALLEL,
        "tests/core",
        *session.posargs,
        env={
            "DACAPO_TRAINERS_TESTS_NEED_FUNLIB": "1",
            # the bioimage.io export tests fail here, rather than skip, without the extra
            "DACAPO_TRAINERS_TESTS_NEED_BIOIMAGEIO": "1",
        },
    )


#: The core's tests whose subject is zarr I/O: opening, writing and naming arrays, DaCapo's
#: containers (prepare_ds, OME-NGFF, zarr format 3), snapshots, previews and TensorBoard images
#: read from them, damaged containers. The rest of the suite does not depend on zarr's version;
#: running only these with zarr 3 keeps CI within its time (``nox -s tests-zarr3 -- tests/core``
#: runs everything).
ZARR_TESTS = [
    f"tests/core/{name}.py"
    for name in (
        "arrays/test_zarr_io",
        "arrays/test_chunk_reads",
        "arrays/test_axis_names",
        "reference/test_reference_zarr_dataset",
        "reference/test_reference_demo_data",
        "dacapo_compat/test_dacapo_data",
        "dacapo_compat/test_dacapo_configs",
        "batches/test_batch_trainer",
        "outputs/test_previews",
        "outputs/test_tensorboard",
        "cli/test_cli_fuzz",
        "arrays/test_remote_data",
    )
]


@nox.session(name="tests-zarr3", python="3.11")
def tests_zarr3(session: nox.Session) -> None:
    """The core alone with zarr 3: the zarr tests (posargs replace the selection)."""
    install(session, CORE_TENSORBOARD, CORE_REMOTE, "zarr>=3", *TEST_TOOLS, *REMOTE_TEST_TOOLS)
    session.run("pytest", *PARALLEL, *(session.posargs or ZARR_TESTS))


#: zarr 2 and zarr 3 for the plugins that allow both (gunpowder 1.4 on Python 3.11 needs zarr 2).
ZARR_VERSIONS = {"2": "zarr>=2.18,<3", "3": "zarr>=3"}


@nox.session(name="tests-simple-tensor", python="3.11")
@nox.parametrize("zarr", list(ZARR_VERSIONS))
def tests_simple_tensor(session: nox.Session, zarr: str) -> None:
    """Core + the simple-tensor plugin alone, with zarr 2 and with zarr 3."""
    install(
        session,
        CORE_REMOTE,
        *existing_plugins("simple-tensor"),
        ZARR_VERSIONS[zarr],
        *TEST_TOOLS,
        *REMOTE_TEST_TOOLS,
    )
    session.run(
        "pytest", *PARALLEL, "plugins/simple-tensor/tests", *CORE_PLUGIN_TESTS, *session.posargs
    )


@nox.session(name="tests-gunpowder", python="3.11")
def tests_gunpowder(session: nox.Session) -> None:
    """Core + the gunpowder plugin alone."""
    install(session, CORE_REMOTE, *existing_plugins("gunpowder"), *TEST_TOOLS, *REMOTE_TEST_TOOLS)
    session.run(
        "pytest", *PARALLEL, "plugins/gunpowder/tests", *CORE_PLUGIN_TESTS, *session.posargs
    )


@nox.session(name="tests-distributed", python="3.11")
def tests_distributed(session: nox.Session) -> None:
    """Core + the distributed plugin + simple-tensor (its inner trainer in the tests), with
    zarr 3: its data is read by simple-tensor, whose session runs under zarr 2 and 3."""
    plugins = existing_plugins("distributed", "simple-tensor")
    install(session, CORE, *plugins, ZARR_VERSIONS["3"], *TEST_TOOLS)
    session.run("pytest", "plugins/distributed/tests", *session.posargs)


@nox.session(python="3.11")
def zarr3(session: nox.Session) -> None:
    """tests-zarr3 (the core alone), then tests-simple-tensor with zarr 3 (+ simple-tensor),
    then tests-distributed (+ distributed) in one venv; the core's TensorBoard extra, installed
    first, stays for the plugins' tests (they do not use it). Takes no posargs."""
    if session.posargs:
        session.error("zarr3 takes no posargs: run its sessions one by one")
    tests_zarr3(session)
    tests_simple_tensor(session, "3")
    tests_distributed(session)


@nox.session(name="tests-dacapo", python="3.11")
def tests_dacapo(session: nox.Session) -> None:
    """Not in the default list: DaCapo 0.3.5 itself writes the files our tests emulate.

    Installs dacapo-ml 0.3.5 (heavy) next to the core and runs the DaCapo-compatibility tests
    with DACAPO_ML=1, which adds the checks against DaCapo's own converter and objects.
    """
    # aiobotocore[boto3]: as in dacapo-parity, keeps pip from backtracking for a long time.
    install(session, CORE, "dacapo-ml==0.3.5", "aiobotocore[boto3]", *TEST_TOOLS)
    session.run(
        "pytest",
        "tests/core/dacapo_compat/test_dacapo_ml.py",
        *session.posargs,
        env={"DACAPO_ML": "1"},
    )


@nox.session(python="3.11")
def scaffold(session: nox.Session) -> None:
    """A plugin written by `dacapo-trainers new-plugin`: installs, passes its tests, is listed."""
    install(session, CORE, "pytest", "hatchling")
    package = Path(session.create_tmp()) / "scaffolded-trainer"
    if package.exists():
        shutil.rmtree(package)
    session.run("dacapo-trainers", "new-plugin", "scaffolded-trainer", "--dir", str(package))
    install(session, f"{package}[test]")  # its test extra, as its README says to install it
    with session.chdir(package):
        session.run("pytest", "-p", "no:cacheprovider", "-rs", *session.posargs)
    listed = session.run("dacapo-trainers", "plugins", silent=True) or ""
    if "ScaffoldedTrainerConfig" not in listed:
        session.error(f"dacapo-trainers plugins does not list ScaffoldedTrainerConfig:\n{listed}")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Sphinx with -W (warnings fail), the doctests of the docs' code blocks, and the pages
    rendered in headless Chromium at 1280 px (no sideways scrolling; needs Debian's chromium
    and chromium-driver, which .ci/run installs; screenshots in docs/_build/screenshots)."""
    install(
        session,
        CORE_TENSORBOARD,  # the TensorBoard example runs
        *existing_plugins("simple-tensor", "gunpowder", "distributed"),
        "sphinx",
        "furo==2025.12.19",  # pinned: the render check measures its layout
        "pytest",
        "selenium==4.51.0",
    )
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "doctest", "docs", "docs/_build/doctest"
    )
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "-rs",
        "tests/docs",
        *session.posargs,
        env={
            "DOCS_HTML": str(ROOT / "docs" / "_build" / "html"),
            "DOCS_SCREENSHOTS": str(ROOT / "docs" / "_build" / "screenshots"),
        },
    )


@nox.session(name="docs-core", python="3.11")
def docs_core(session: nox.Session) -> None:
    """The HTML docs with -W from a checkout with the core alone installed (no plugin, no
    pytest): pages generated from what is missing show a note instead (``requires-module``)."""
    install(session, CORE, "sphinx", "furo==2025.12.19")
    output = Path(session.create_tmp()) / "html"
    session.run("sphinx-build", "-W", "--keep-going", "-q", "-b", "html", "docs", str(output))


@nox.session(name="docs-core-scaffold", python="3.11")
def docs_core_scaffold(session: nox.Session) -> None:
    """docs-core (before pytest is installed), then scaffold in the same venv."""
    docs_core(session)
    scaffold(session)


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The README's first command: install, make demo data, train, leave outputs in runs/."""
    install(session, CORE, *existing_plugins("simple-tensor", "gunpowder"))
    session.run("dacapo-trainers", "demo", *session.posargs)


@nox.session(name="demo-preview", python="3.11")
def demo_preview(session: nox.Session) -> None:
    """Train the demo and copy its last snapshot preview to docs/_static/demo-snapshot.png."""
    install(session, CORE, *existing_plugins("simple-tensor", "gunpowder"))
    session.run("python", "docs/make_demo_preview.py", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks (not timed tests): ratios measured side by side in one run."""
    install(
        session,
        CORE_REMOTE,
        *existing_plugins("simple-tensor", "gunpowder", "distributed"),
        "hatchling",
        *REMOTE_TEST_TOOLS,  # bench_remote.py reads from moto's S3 server
    )
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run(
            "python", str(script), "--json", str(out / f"{script.stem}.json"), *session.posargs
        )


@nox.session(name="dacapo-parity", python="3.11")
def dacapo_parity(session: nox.Session) -> None:
    """Batches of DaCapo 0.3.5's GunpowderTrainer against this project's, on the same data and
    config (raw range, padding value, masked centre, batch layout, batch statistics), the loss
    curves of both on one DaCapo RunConfig (150 iterations, 2 seeds; ``-- --iterations N
    --seeds A B`` changes them) and their snapshots, and DaCapo's weights files
    (benchmarks/dacapo_weights.py); not a default session."""
    install(session, CORE, PLUGINS["gunpowder"])
    # aiobotocore[boto3] pins a boto3 that its botocore accepts: without it pip backtracks
    # through aiobotocore versions (from fibsem-tools -> s3fs) for a long time
    install(session, "dacapo-ml==0.3.5", "aiobotocore[boto3]")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    session.run(
        "python",
        str(ROOT / "benchmarks" / "dacapo_parity.py"),
        "--json",
        str(out / "dacapo_parity.json"),
        *session.posargs,
    )
    # DaCapo's weights files: the committed fixture, the names, an export read by DaCapo
    session.run("python", str(ROOT / "benchmarks" / "dacapo_weights.py"), "--first-loss")
