"""The example plugin of the docs (docs/example_plugin.rst, a mixup trainer), built from the
page's code blocks alone: it installs, passes the conformance kit (exact resume included) in a
pytest process of its own, and ``dacapo-trainers plugins`` lists it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from docs_pages import code_blocks, page_files
from plugin_packages import pip_install_target

from dacapo_trainers.testing import TrainerConformance

FILES = {
    "pyproject.toml",
    "src/mixup_trainer/__init__.py",
    "src/mixup_trainer/plugin.py",
    "src/mixup_trainer/config.py",
    "src/mixup_trainer/trainer.py",
    "tests/test_mixup_conformance.py",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the package written from the page, the folder it is pip-installed into)."""
    root = tmp_path_factory.mktemp("mixup")
    package = root / "mixup-trainer"
    code_blocks.write_files(page_files("example_plugin.rst"), package)
    site = root / "site"
    pip_install_target([package], site)
    return package, site


def _env(site: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DACAPO_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_the_page_shows_the_whole_package() -> None:
    files = page_files("example_plugin.rst")
    assert set(files) == FILES
    assert "exact_resume = True" in files["tests/test_mixup_conformance.py"]
    # the documented pattern for a sampler without a generator
    trainer = files["src/mixup_trainer/trainer.py"]
    assert "self.draw_seed()" in trainer and "torch.random.fork_rng" in trainer


@pytest.mark.slow
def test_it_passes_the_conformance_kit(installed: tuple[Path, Path]) -> None:
    package, site = installed
    report = package / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}"],
        cwd=package,
        env=_env(site),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    cases = list(ElementTree.parse(report).getroot().iter("testcase"))
    ran = {case.get("name") for case in cases}
    checks = {name for name in dir(TrainerConformance) if name.startswith("test_")}
    assert ran == checks
    skipped = [case.get("name") for case in cases if case.find("skipped") is not None]
    assert skipped == []  # snapshots and the exact resume included


@pytest.mark.slow
def test_dacapo_trainers_plugins_lists_it(installed: tuple[Path, Path]) -> None:
    _, site = installed
    result = subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", "plugins", "--json"],
        env=_env(site),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    records = {record["type"]: record for record in json.loads(result.stdout)}
    mixup = records["MixupTrainerConfig"]
    assert (mixup["distribution"], mixup["state"]) == ("mixup-trainer", "ok"), mixup
