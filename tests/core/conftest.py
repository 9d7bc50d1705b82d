"""Fixtures shared by the core tests: real pip-installed throwaway plugin packages."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest
from plugin_packages import AUTHOR_MISTAKES, PACKAGES, pip_install_target, write_package
from run_helpers import CLI

from dacapo_trainers.reference import make_demo_data


def _shared_temp(factory: pytest.TempPathFactory) -> Path:
    """A temporary folder that every pytest-xdist worker of this test run shares."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _site(factory: pytest.TempPathFactory, label: str, names: list[str]) -> Path:
    """A folder where the throwaway plugins ``names`` are pip-installed (PYTHONPATH-style).

    Built once per test run, not once per worker: the first worker builds it under a file lock,
    the others wait and use it (the tests only read it).
    """
    root = _shared_temp(factory) / f"dacapo-trainers-{label}-plugins"
    root.mkdir(exist_ok=True)
    target = root / "site"
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "complete").exists():
            for partial in (root / "sources", target):
                shutil.rmtree(partial, ignore_errors=True)
            sources = root / "sources"
            sources.mkdir()
            pip_install_target([write_package(sources, name) for name in names], target)
            (root / "complete").touch()
    return target


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every throwaway plugin but the author-mistake ones."""
    return _site(tmp_path_factory, "plugin", [n for n in PACKAGES if n not in AUTHOR_MISTAKES])


@pytest.fixture(scope="session")
def mistakes_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The good plugin and the plugins of a plugin author's usual mistakes."""
    return _site(tmp_path_factory, "mistakes", ["dt-good", *AUTHOR_MISTAKES])


@pytest.fixture(scope="session")
def tensor_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the tiny real trainer plugin (dt-tensor)."""
    return _site(tmp_path_factory, "tensor", ["dt-tensor"])


@pytest.fixture(scope="session")
def good_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the good throwaway plugin."""
    return _site(tmp_path_factory, "good", ["dt-good"])


@pytest.fixture(scope="session")
def demo_zarr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic demo volume (raw, gt, mask), 40 voxels per axis."""
    return make_demo_data(tmp_path_factory.mktemp("data") / "demo.zarr", shape=(40, 40, 40))


@pytest.fixture
def cli(plugin_site: Path, tmp_path: Path) -> CLI:
    return CLI(plugin_site, tmp_path)


@pytest.fixture
def mistakes_cli(mistakes_site: Path, tmp_path: Path) -> CLI:
    return CLI(mistakes_site, tmp_path)


@pytest.fixture
def good_cli(good_site: Path, tmp_path: Path) -> CLI:
    return CLI(good_site, tmp_path)


@pytest.fixture
def tensor_cli(tensor_site: Path, tmp_path: Path) -> CLI:
    return CLI(tensor_site, tmp_path)
