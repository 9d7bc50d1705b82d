"""The files of an output folder under attack: damaged stats and run config, names that would
leave the runs folder, and what is (not) written before a run's inputs are checked."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_helpers import CLI, run_data, stats_of, write_run

from dacapo_trainers._configs._run_config import folder_name_problem


def test_stats_with_bytes_that_are_not_utf8_are_kept_aside_and_the_run_resumes(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    data = {**run_data(demo_zarr, output), "num_iterations": 4}
    assert tensor_cli("train", str(write_run(tmp_path / "a.yaml", data)), "--quiet").returncode == 0
    stats = output / "stats.jsonl"
    lines = stats.read_bytes().splitlines(keepends=True)
    damaged = b"".join([*lines[:2], b"\xff\xfe garbage \x80\n", *lines[2:]])
    stats.write_bytes(damaged)
    longer = write_run(tmp_path / "b.yaml", {**data, "num_iterations": 6})
    result = tensor_cli("train", str(longer), "--quiet")
    assert result.returncode == 0, result.stderr
    assert [s["iteration"] for s in stats_of(output)] == list(range(6))
    assert (output / "stats.jsonl.damaged").read_bytes() == damaged


def test_a_damaged_run_config_copy_is_reported_and_nothing_is_lost(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    data = {**run_data(demo_zarr, output), "num_iterations": 4}
    run_file = write_run(tmp_path / "a.yaml", data)
    assert tensor_cli("train", str(run_file), "--quiet").returncode == 0
    copy = output / "run_config.json"
    copy.write_bytes(b'{"name": "tiny", \xff')
    longer = write_run(tmp_path / "b.yaml", {**data, "num_iterations": 6})
    result = tensor_cli("train", str(longer), "--quiet")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {copy} is damaged (")
    assert "Restore it from a copy; or, if you are sure the folder holds this run, delete it" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert [p.name for p in (output / "checkpoints").glob("*.pt")] == ["iteration_00000004.pt"]
    copy.unlink()
    assert tensor_cli("train", str(longer), "--quiet").returncode == 0
    assert [s["iteration"] for s in stats_of(output)] == list(range(6))


def test_a_run_refused_before_its_first_checkpoint_can_be_fixed_in_place(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    data = run_data(demo_zarr, output)
    data["architecture_config"]["input_shape"] = [44, 44, 44]  # the volume is 40^3
    refused = tensor_cli("train", str(write_run(tmp_path / "a.yaml", data)), "--quiet")
    assert refused.returncode == 1
    assert "cannot build its batch provider" in refused.stderr
    data["architecture_config"]["input_shape"] = [20, 20, 20]
    fixed = tensor_cli("train", str(write_run(tmp_path / "b.yaml", data)), "--quiet")
    assert fixed.returncode == 0, fixed.stderr  # no "holds a run with a different ..."


def test_nothing_is_written_before_the_inputs_are_checked(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    data["architecture_config"]["input_shape"] = [2, 2, 2]  # no U-Net fits: the model fails
    result = tensor_cli("train", str(write_run(tmp_path / "a.yaml", data)))
    assert result.returncode == 2
    assert "$.architecture_config: UNetConfig 'tiny_unet' (dacapo-trainers 0.1.0) cannot be " in (
        result.stderr
    )
    assert "is too small" in result.stderr and "Nearest valid input shapes" in result.stderr
    assert not (tmp_path / "out").exists()
    checked = tensor_cli("validate", "--inputs", str(tmp_path / "a.yaml"))
    assert checked.returncode == 2
    assert checked.stderr == result.stderr


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("x" * 300, "it is longer than 128 characters"),
        ("../../../x", "it contains a path separator"),
        ("..", "'.' and '..' name no new folder"),
        ("a\nb", "it contains a control character"),
        ("", "it is empty"),
    ],
)
def test_run_names_that_are_not_a_folder_name_are_refused(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path, name: str, problem: str
) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    del data["output"]  # the default output runs/<name> is where a name could escape
    data["name"] = name
    result = tensor_cli("validate", str(write_run(tmp_path / "run.yaml", data)))
    assert result.returncode == 2
    assert "$.name: " in result.stderr
    assert f"cannot name the run's output folder (runs/<name>): {problem}" in result.stderr


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.text(min_size=1, max_size=140))
def test_every_accepted_name_is_one_new_folder_inside_the_runs_folder(name: str) -> None:
    if folder_name_problem(name) is not None:
        return
    with tempfile.TemporaryDirectory() as temporary:
        runs = Path(temporary) / "runs"
        folder = runs / name
        folder.mkdir(parents=True)
        assert folder.resolve().parent == runs.resolve()
        assert list(runs.iterdir()) == [folder]


def test_debug_adds_the_traceback_before_the_same_paragraph(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    data["datasets"][0]["container"] = str(tmp_path / "missing.zarr")
    run_file = str(write_run(tmp_path / "run.yaml", data))
    plain = tensor_cli("train", run_file)
    debug = tensor_cli("--debug", "train", run_file)
    by_variable = tensor_cli("train", run_file, DACAPO_TRAINERS_DEBUG="1")
    assert plain.returncode == debug.returncode == by_variable.returncode == 2
    assert "Traceback" not in plain.stderr
    for shown in (debug.stderr, by_variable.stderr):
        assert shown.startswith("Traceback (most recent call last):")
        assert "zarr container" in shown and "does not exist" in shown
        assert shown.strip().splitlines()[-1] == plain.stderr.strip()
