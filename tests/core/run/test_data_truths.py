"""Data nobody checked, and messages that must be true about it: a mask that is zero
everywhere is refused before training (by every trainer, as the gunpowder trainer does), and
a NaN loss before the first checkpoint does not speak of resuming from one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from run_helpers import CLI, run_data, write_run

from dacapo_trainers import open_array, write_array
from dacapo_trainers.reference import make_demo_data


def test_a_mask_that_is_zero_everywhere_is_refused_by_validate_and_train(
    tensor_cli: CLI, tmp_path: Path
) -> None:
    container = make_demo_data(tmp_path / "demo.zarr", shape=(40, 40, 40))
    mask = open_array(container, "mask")
    zeros = np.zeros(mask.data.shape, dtype=mask.data.dtype)
    write_array(container, "mask", zeros, voxel_size=mask.voxel_size, offset=mask.offset)
    data = run_data(container, tmp_path / "out")
    data["datasets"][0]["mask"] = "mask"
    run_file = write_run(tmp_path / "run.yaml", data)
    for command in (["validate", "--inputs"], ["train"]):
        result = tensor_cli(*command, str(run_file))
        assert result.returncode == 2, (command, result.stderr)
        assert "$.datasets[0]: its mask (shape [40, 40, 40]) is zero everywhere: no voxel" in (
            " ".join(result.stderr.split())
        ), result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_nan_loss_before_the_first_checkpoint_does_not_speak_of_resuming(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    run_file = write_run(tmp_path / "run.yaml", run_data(demo_zarr, output, nan_at=2))
    result = tensor_cli("train", str(run_file), "--quiet")
    assert result.returncode == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert "the loss became nan at iteration 2; the run stopped and no checkpoint was " in message
    assert "resume" not in message and "that checkpoint" not in message
    assert "then run the same command again: it starts over" in message
    assert not (output / "checkpoints").exists() or not any((output / "checkpoints").iterdir())
