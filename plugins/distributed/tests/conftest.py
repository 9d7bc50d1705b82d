"""Fixtures: demo data, and the test-only fault plugin on a PYTHONPATH folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from distributed_helpers import FAULTS

from dacapo_trainers.reference import make_demo_data

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def demo_container(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "demo.zarr"
    return make_demo_data(path, shape=(32, 32, 32), seed=0)


@pytest.fixture(scope="session")
def faults_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``PYTHONPATH`` folder where the test-only ``FaultyTrainerConfig`` plugin is found.

    The ``.dist-info`` makes ``importlib.metadata`` list its entry point, as for a
    pip-installed plugin, without installing anything.
    """
    folder = tmp_path_factory.mktemp("faults")
    shutil.copy(FAULTS / "dacapo_distributed_faults.py", folder)
    info = folder / "dacapo_distributed_faults-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: dacapo-distributed-faults\nVersion: 0.0.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[dacapo_trainers]\nFaultyTrainerConfig = dacapo_distributed_faults\n"
    )
    return folder
