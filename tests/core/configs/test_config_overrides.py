"""``--set PATH=VALUE`` on ``train``, ``validate`` and ``show``: values read by the field's type,
typos named with their path and the closest field, and the effective config is what a run
records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from run_helpers import CLI, run_data, write_run

from dacapo_trainers import ConfigError, RunConfig, load_config
from dacapo_trainers._configs._overrides import apply_overrides, parse_override

#: A shorter run than the file's, with a learning rate of its own.
SHORTER = (
    "--set", "trainer_config.learning_rate=2.5e-3",
    "--set", "num_iterations=4",
    "--set", "checkpoint_interval=2",
)  # fmt: skip


def _run_file(tmp_path: Path, demo_zarr: Path) -> Path:
    return write_run(tmp_path / "run.yaml", run_data(demo_zarr, tmp_path / "out"))


def test_train_records_the_effective_config(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    run_file = _run_file(tmp_path, demo_zarr)
    result = tensor_cli("train", str(run_file), "--quiet", *SHORTER)
    assert result.returncode == 0, result.stderr
    recorded = json.loads((tmp_path / "out" / "run_config.json").read_text())
    assert recorded["trainer_config"]["learning_rate"] == 2.5e-3
    assert recorded["num_iterations"] == 4
    stats = (tmp_path / "out" / "stats.jsonl").read_text().splitlines()
    assert len(stats) == 4  # four iterations, not the file's twelve
    checkpoints = sorted(p.name for p in (tmp_path / "out" / "checkpoints").glob("*.pt"))
    assert checkpoints == ["iteration_00000002.pt", "iteration_00000004.pt"]
    # The same command again resumes the same (overridden) run: nothing left to do.
    again = tensor_cli("train", str(run_file), *SHORTER)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    # Another value is another run: the folder refuses it, and its checkpoints stay.
    other = tensor_cli(
        "train",
        str(run_file),
        "--set",
        "trainer_config.learning_rate=1e-2",
        "--set",
        "num_iterations=4",
        "--set",
        "checkpoint_interval=2",
    )
    assert other.returncode == 2
    assert "$.trainer_config" in other.stderr
    assert len(list((tmp_path / "out" / "checkpoints").glob("*.pt"))) == 2


def test_a_typo_names_the_path_and_the_closest_field_and_writes_nothing(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    run_file = _run_file(tmp_path, demo_zarr)
    result = tensor_cli("train", str(run_file), "--set", "trainer_config.learnig_rate=1e-4")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "$.trainer_config.learnig_rate" in result.stderr
    assert "did you mean 'learning_rate'" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("override", "path", "words"),
    [
        ("num_iterations=often", "$.num_iterations", "expects an integer, got 'often'"),
        ("trainer_config.learning_rate=fast", "$.trainer_config.learning_rate", "a number"),
        ("datasets[3].name=x", "$.datasets[3]", "index past the end (the list has 1 items)"),
        ("nmae=x", "$.nmae", "did you mean 'name'"),
        ("num_iterations", "$", "is not PATH=VALUE"),
        ("datasets..name=x", "$", "is not a path"),
    ],
)
def test_bad_overrides_are_one_line_with_their_path(
    override: str, path: str, words: str, tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    result = tensor_cli("validate", str(_run_file(tmp_path, demo_zarr)), "--set", override)
    assert result.returncode == 2, result.stdout
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"{path}" in result.stderr and words in result.stderr, result.stderr


def test_validate_prints_the_overridden_config(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    result = tensor_cli(
        "validate",
        str(_run_file(tmp_path, demo_zarr)),
        "--set",
        "datasets[0].name=renamed",
        "--set",
        "architecture_config.input_shape=[24, 24, 24]",
        "--set",
        "architecture_config.num_fmaps_out=null",
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["datasets"][0]["name"] == "renamed"
    assert config["architecture_config"]["input_shape"] == [24, 24, 24]
    assert config["architecture_config"]["num_fmaps_out"] is None


def test_show_takes_the_same_flag(tensor_cli: CLI) -> None:
    result = tensor_cli("show", "UNetConfig", "--set", "num_fmaps=4")
    assert result.returncode == 0, result.stderr
    assert "num_fmaps: int = 4  (set; default: 8)" in result.stdout
    typo = tensor_cli("show", "UNetConfig", "--set", "num_fmap=4")
    assert typo.returncode == 2
    assert "did you mean 'num_fmaps'" in typo.stderr


def test_a_value_of_the_wrong_type_for_a_tagged_config_is_refused(
    demo_zarr: Path, tmp_path: Path
) -> None:
    run_file = _run_file(tmp_path, demo_zarr)
    with pytest.raises(ConfigError) as caught:
        load_config(run_file, RunConfig, overrides=["architecture_config.num_fmaps=2.5"])
    assert "$.architecture_config.num_fmaps: expects an integer, got '2.5'" in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=1e-9, max_value=10.0, allow_nan=False, allow_infinity=False),
    iterations=st.integers(min_value=1, max_value=10**9),
)
def test_numbers_round_trip_through_their_text(rate: float, iterations: int) -> None:
    data = {"num_iterations": 1, "trainer_config": {"learning_rate": 0.1}}
    result = apply_overrides(
        data,
        [f"trainer_config.learning_rate={rate!r}", f"num_iterations={iterations}"],
        RunConfig,
    )
    assert result["trainer_config"]["learning_rate"] == rate
    assert result["num_iterations"] == iterations
    assert data["num_iterations"] == 1  # the file's data is not changed


def test_parse_override_splits_fields_and_indices() -> None:
    override = parse_override("datasets[0].container = s3://b/d.zarr ")
    assert override.steps == ("datasets", 0, "container")
    assert override.text == "s3://b/d.zarr"
    assert override.path == "$.datasets[0].container"
