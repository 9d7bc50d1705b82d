"""A run whose augments have pair fields resumes (issue: it was refused as a different run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gunpowder_helpers import demo_run_file

from dacapo_trainers.reference import make_demo_data


def _run_file(folder: Path, iterations: int) -> Path:
    augments = [
        {
            "__type__": "ElasticAugmentConfig",
            "control_point_spacing": [10, 10, 10],
            "control_point_displacement_sigma": [1.0, 1.0, 1.0],
            "rotation_interval": [0.0, 0.5],
        },
        {"__type__": "IntensityAugmentConfig", "scale": [0.9, 1.1], "shift": [-0.1, 0.1]},
        {"__type__": "GammaAugmentConfig", "gamma_range": [0.8, 1.2]},
    ]
    # the demo raw is uint8; the augments need [0, 1]
    return demo_run_file(folder, iterations, augments, intensity_range=[0, 255])


def _train(run_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_run_with_pair_fields_resumes_and_trains_longer(tmp_path: Path) -> None:
    make_demo_data(tmp_path / "demo.zarr", shape=(40, 40, 40))
    first = _train(_run_file(tmp_path, 2))
    assert first.returncode == 0, first.stderr
    again = _train(_run_file(tmp_path, 2))  # the same run: nothing to do, not refused
    assert again.returncode == 0, again.stderr
    longer = _train(_run_file(tmp_path, 4))  # trains on from the checkpoint of iteration 2
    assert longer.returncode == 0, longer.stderr
    checkpoints = sorted(p.name for p in (tmp_path / "out" / "checkpoints").glob("*.pt"))
    assert checkpoints == ["iteration_00000002.pt", "iteration_00000004.pt"]
