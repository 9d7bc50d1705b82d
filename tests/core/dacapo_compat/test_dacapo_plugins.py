"""A DaCapo-written run trains through the CLI with the simple-tensor and gunpowder trainers.

Each test needs its plugin and skips without it; nox runs this file in the sessions that
install the plugin (tests-simple-tensor, tests-gunpowder).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from dacapo_run_files import dacapo_run, write_dacapo_data
from dacapo_written import (
    affinities_task,
    binarize_config,
    cnnectome_unet,
    coordinate,
    crop_config,
    datasplit,
    distance_task,
    dummy_trainer,
    gunpowder_trainer,
    intensities_config,
    prepare_array,
    raw_gt_dataset,
    run_document,
    write_file_store_yaml,
    zarr_array_config,
)

from dacapo_trainers._outputs._observers import read_stats, read_validation
from dacapo_trainers.reference import make_demo_data


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
    # DaCapo's affinities objective: binary cross-entropy on logits starts near ln 2
    first = read_stats(tmp_path / "runs" / "dacapo_run" / "stats.jsonl")[0].loss
    assert abs(first - math.log(2)) < 0.1, first


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


def write_upsampled_data(folder: Path) -> Path:
    """DaCapo's cosem situation in small: raw at 4 nm, gt at 2 nm (prepare_ds, no root group)."""
    demo = make_demo_data(folder / "demo.zarr", shape=(40, 40, 40), seed=1)
    container = folder / "upsampled.zarr"
    raw = np.asarray(zarr.open_array(str(demo / "raw"), mode="r")[...])
    gt = np.asarray(zarr.open_array(str(demo / "gt"), mode="r")[...])
    fine = gt.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    prepare_array(container, "raw", raw, voxel_size=(4, 4, 4))
    prepare_array(container, "gt", fine, voxel_size=(2, 2, 2))
    return container


@pytest.mark.parametrize(
    ("plugin", "trainer"),
    [
        ("dacapo_trainers_simple_tensor", simple_tensor_trainer),
        ("dacapo_trainers_gunpowder", gunpowder_trainer),
    ],
)
def test_an_upsampling_cnnectome_unet_trains_on_finer_gt(
    tmp_path: Path, plugin: str, trainer: Any
) -> None:
    """CNNectomeUNetConfig.upsample_factors: 4 nm raw in, 2 nm prediction out (gt at 2 nm)."""
    pytest.importorskip(plugin)
    container = write_upsampled_data(tmp_path)
    raw = intensities_config("raw_norm", zarr_array_config("raw", container, "raw"), 0, 255)
    gt = zarr_array_config("gt", container, "gt")
    train = raw_gt_dataset(
        "train", raw, crop_config("gt_train", gt, coordinate(0, 0, 0), coordinate(160, 160, 80))
    )
    validate = raw_gt_dataset(
        "validate", raw, crop_config("gt_val", gt, coordinate(0, 0, 80), coordinate(160, 160, 80))
    )
    snapshots = {**trainer(), "snapshot_interval": 2}
    document = run_document(
        "upsampled",
        affinities_task([coordinate(1, 0, 0), coordinate(0, 1, 0), coordinate(0, 0, 1)]),
        cnnectome_unet(coordinate(28, 28, 28), upsample_factors=[coordinate(2, 2, 2)]),
        snapshots,
        datasplit("split", [train], [validate]),
        num_iterations=4,
        validation_interval=2,
    )
    run_file = write_file_store_yaml(tmp_path / "run.yaml", document)
    result = train_cli(run_file, tmp_path)
    assert result.returncode == 0, result.stderr
    output = tmp_path / "runs" / "upsampled"
    check_trained(output)
    snapshot = zarr.open_group(str(output / "snapshots.zarr"), mode="r")["2/volumes"]
    assert snapshot["raw"].attrs["voxel_size"] == [4, 4, 4]
    for name in ("gt", "target", "prediction"):
        assert snapshot[name].attrs["voxel_size"] == [2, 2, 2], name
    # the prediction covers the gt crop it is compared with, voxel for voxel
    assert snapshot["prediction"].shape[-3:] == snapshot["gt"].shape[-3:]
