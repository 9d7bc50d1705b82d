"""A DaCapo-written run trains through the CLI with the simple-tensor and gunpowder trainers.

Each test needs its plugin and skips without it; nox runs this file in the sessions that
install the plugin (tests-simple-tensor, tests-gunpowder).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dacapo_run_files import dacapo_run, write_dacapo_data
from dacapo_written import (
    binarize_config,
    distance_task,
    dummy_trainer,
    gunpowder_trainer,
    write_file_store_yaml,
)

from dacapo_trainers._observers import read_stats, read_validation


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dacapo_data(tmp_path_factory.mktemp("data"))


def train_cli(run_file: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def check_trained(output: Path) -> None:
    stats = read_stats(output / "stats.jsonl")
    assert [s.iteration for s in stats] == [0, 1, 2, 3]
    assert all(np.isfinite(s.loss) for s in stats)
    assert [i for i, _ in read_validation(output / "stats.jsonl")] == [1, 3]
    copy = json.loads((output / "run_config.json").read_text())
    assert copy["datasplit_config"]["__type__"] == "TrainValidateDataSplitConfig"


def simple_tensor_trainer() -> dict[str, Any]:
    return {
        "__type__": "SimpleTensorTrainerConfig",
        "name": "simple",
        "batch_size": 1,
        "learning_rate": 1e-3,
    }


@pytest.mark.parametrize(
    ("plugin", "trainer"),
    [
        ("dacapo_trainers_simple_tensor", simple_tensor_trainer),
        ("dacapo_trainers_gunpowder", gunpowder_trainer),
    ],
)
def test_dacapo_run_trains_with_the_plugin(
    container: Path, tmp_path: Path, plugin: str, trainer: Any
) -> None:
    pytest.importorskip(plugin)
    run_file = write_file_store_yaml(tmp_path / "run.yaml", dacapo_run(container, trainer()))
    result = train_cli(run_file, tmp_path)
    assert result.returncode == 0, result.stderr
    check_trained(tmp_path / "runs" / "dacapo_run")


@pytest.mark.parametrize(
    ("plugin", "trainer", "channels"),
    [
        ("dacapo_trainers", dummy_trainer, ["cells", "none"]),
        ("dacapo_trainers_simple_tensor", simple_tensor_trainer, ["cells", "none"]),
        ("dacapo_trainers_gunpowder", gunpowder_trainer, ["cells", "none"]),
    ],
)
def test_distance_task_on_binarized_gt_with_a_channel_axis(
    container: Path, tmp_path: Path, plugin: str, trainer: Any, channels: list[str]
) -> None:
    pytest.importorskip(plugin)
    document = dacapo_run(container, trainer(), task_config=distance_task(channels))
    groups = [("cells", []), ("none", [10**6])][: len(channels)]
    split = document["datasplit_config"]
    for dataset in (*split["train_configs"], *split["validate_configs"]):
        crop = dataset["gt_config"]
        crop["source_array_config"] = binarize_config("cells", crop["source_array_config"], groups)
    run_file = write_file_store_yaml(tmp_path / "run.yaml", document)
    result = train_cli(run_file, tmp_path)
    assert result.returncode == 0, result.stderr
    check_trained(tmp_path / "runs" / "dacapo_run")
