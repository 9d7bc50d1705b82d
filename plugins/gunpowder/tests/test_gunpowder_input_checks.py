"""Data smaller than the model's input is refused by ``validate --inputs`` and by ``train``
alike, before ``train`` writes anything; a chunk that fails to read during training is named."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from gunpowder_helpers import demo_run_file

from dacapo_trainers.reference import make_demo_data


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", *arguments],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_raw_smaller_than_the_input_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    make_demo_data(tmp_path / "demo.zarr", shape=(40, 40, 12))  # the model takes 20³
    run_file = demo_run_file(tmp_path, 2, [])
    output = tmp_path / "out"
    for command in (["validate", "--inputs"], ["train", "--quiet"]):
        result = _cli(*command, str(run_file))
        message = " ".join(result.stderr.split())
        assert result.returncode == 1, (command, result.stderr)  # the trainer refused
        assert "GunpowderTrainerConfig 'gp' cannot train on datasets 'demo': " in message
        assert "has raw of shape (40, 40, 12), smaller than the model input (20, 20, 20)" in (
            message
        )
        assert "Traceback" not in result.stderr
    assert not output.exists()  # not even run_config.json


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])
def test_a_chunk_damaged_during_training_is_named_and_the_checkpoints_kept(
    tmp_path: Path, workers: int
) -> None:
    """Storage going bad under a run (chunks checked before training, damaged after): the
    run stops naming the dataset, the array and the chunk, and keeps its checkpoints."""
    make_demo_data(tmp_path / "demo.zarr", shape=(40, 40, 40))
    run_file = demo_run_file(tmp_path, 100_000, [])
    run = yaml.safe_load(run_file.read_text())
    run["trainer_config"].update(num_data_fetchers=workers, preload_limit_mb=0)
    run["checkpoint_interval"] = 1
    run_file.write_text(yaml.safe_dump(run))
    process = subprocess.Popen(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
    )
    stats = tmp_path / "out" / "stats.jsonl"
    deadline = time.monotonic() + 300
    while not (stats.exists() and stats.read_text().count("\n") >= 2):
        assert process.poll() is None and time.monotonic() < deadline, "the run did not train"
        time.sleep(0.2)
    raw = tmp_path / "demo.zarr" / "raw"
    for chunk in (p for p in raw.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if chunk.name != "zarr.json":
            chunk.write_bytes(b"\x00" * 8)  # shorter than any codec's header
    _, stderr = process.communicate(timeout=300)
    message = " ".join(stderr.split())
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and "unexpected" not in message, stderr
    assert f"dataset 'demo', its raw array ({raw}) has a chunk that cannot be read: chunk " in (
        message
    )
    assert "Restore the container from a copy, or write that chunk again" in message
    assert sorted((tmp_path / "out" / "checkpoints").glob("*.pt"))  # kept
