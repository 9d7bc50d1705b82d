"""What no trainer can train on is refused by ``validate --inputs`` and by ``train`` alike,
before anything is written: a batch that cannot fit in memory, 2D data for a 3D model,
3-channel raw for a 1-channel model, gt that does not overlap raw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from run_helpers import CLI, run_data, write_run

from dacapo_trainers import write_array


def _container(folder: Path, raw: np.ndarray, gt_offset: int = 0, channels: bool = False) -> Path:
    container = folder / "data.zarr"
    spatial = raw.ndim - (1 if channels else 0)
    write_array(
        container,
        "raw",
        raw,
        voxel_size=[1] * spatial,
        axis_names=(["c^"] if channels else []) + list("zyx"[-spatial:]),
    )
    gt = np.zeros(raw.shape[-spatial:], dtype=np.uint64)
    gt[..., ::2] = 1
    write_array(container, "gt", gt, voxel_size=[1] * spatial, offset=[gt_offset] * spatial)
    return container


def _refused_by_both(cli: CLI, data: dict, folder: Path, expected: str) -> None:  # type: ignore[type-arg]
    run_file = write_run(folder / "run.yaml", data)
    for command in (["validate", "--inputs"], ["train"]):
        result = cli(*command, str(run_file))
        assert result.returncode == 2, (command, result.stderr)
        assert expected in " ".join(result.stderr.split()), (command, result.stderr)
        assert "Traceback" not in result.stderr
    assert not Path(data["output"]).exists()  # train wrote nothing, not even run_config.json


def test_a_batch_that_cannot_fit_in_memory_is_refused_with_the_numbers(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    data["trainer_config"]["batch_size"] = 1_000_000_000
    _refused_by_both(
        tensor_cli,
        data,
        tmp_path,
        "$.trainer_config.batch_size: 1000000000 samples of ",
    )
    run_file = write_run(tmp_path / "run.yaml", data)
    message = tensor_cli("validate", "--inputs", str(run_file)).stderr
    assert "TiB" in message and "available; lower batch_size (at most about " in message


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("2d", "its raw array has 2 spatial axes (shape [40, 40]), but the model takes 3D input"),
        ("3-channel", "its raw array has 3 channel(s) (shape [3, 40, 40, 40]"),
        ("apart", "its gt (from 1000..1040 x 1000..1040 x 1000..1040) does not overlap its raw"),
    ],
)
def test_data_the_model_cannot_take_is_refused_by_validate_and_train(
    tensor_cli: CLI, tmp_path: Path, case: str, expected: str
) -> None:
    rng = np.random.default_rng(0)
    if case == "2d":
        container = _container(tmp_path, rng.random((40, 40), dtype=np.float32))
    elif case == "3-channel":
        raw = rng.random((3, 40, 40, 40), dtype=np.float32)
        container = _container(tmp_path, raw, channels=True)
    else:
        container = _container(tmp_path, rng.random((40, 40, 40), dtype=np.float32), 1000)
    data = run_data(container, tmp_path / "out")
    _refused_by_both(tensor_cli, data, tmp_path, f"$.datasets[0]: {expected}")
