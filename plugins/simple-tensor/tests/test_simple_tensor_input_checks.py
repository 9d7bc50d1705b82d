"""Data the model does not fit in is refused by ``validate --inputs`` and by ``train`` alike,
before ``train`` writes anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dacapo_trainers.reference import make_demo_data
from dacapo_trainers.testing import tiny_run_data

TRAINER = {
    "__type__": "SimpleTensorTrainerConfig",
    "name": "tensor",
    "batch_size": 1,
    "learning_rate": 1e-3,
}


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", *arguments],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (
            (40, 40, 12),  # the model takes 20³
            "dataset 'demo' is too small for the model: input (20, 20, 20) / output "
            "(4, 4, 4) voxels do not fit in raw (40, 40, 12)",
        ),
        ((40, 40, 40), None),  # fits: trains
    ],
)
def test_data_the_model_does_not_fit_in_is_refused_before_anything_is_written(
    tmp_path: Path, shape: tuple[int, ...], expected: str | None
) -> None:
    container = make_demo_data(tmp_path / "demo.zarr", shape=shape)
    output = tmp_path / "out"
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps(tiny_run_data(TRAINER, container, output)))
    for command in (["validate", "--inputs"], ["train", "--quiet"]):
        result = _cli(*command, str(run_file))
        if expected is None:
            assert result.returncode == 0, (command, result.stderr)
            continue
        message = " ".join(result.stderr.split())
        assert result.returncode == 1, (command, result.stderr)  # the trainer refused
        assert "SimpleTensorTrainerConfig 'tensor' cannot train on datasets 'demo': " in message
        assert expected in message, message
        assert "Traceback" not in result.stderr
    assert output.exists() == (expected is None)  # a refused run wrote nothing
