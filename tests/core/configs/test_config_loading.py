"""One function reads every config file: ``load_config(path, cls=None, *, registry=None)``.

What the file holds picks the class (a run file or a tagged config); the older names are thin
aliases of it, and the CLI reads through it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dacapo_trainers import (
    ConfigError,
    RunConfig,
    TrainerConfig,
    load_config,
    load_run_config,
    read_config_file,
    unstructure_config,
)
from dacapo_trainers.reference import DummyTrainerConfig, UNetConfig

TRAINER = {
    "__type__": "DummyTrainerConfig",
    "name": "dummy",
    "batch_size": 1,
    "learning_rate": 1e-4,
    "mirror_augment": False,
}


def run_data(tmp_path: Path) -> dict[str, Any]:
    return {
        "name": "loading",
        "trainer_config": TRAINER,
        "architecture_config": {"__type__": "UNetConfig", "name": "u", "input_shape": [20, 20, 20]},
        "task_config": {"__type__": "AffinitiesTaskConfig", "name": "affs"},
        "datasets": [{"__type__": "ZarrDatasetConfig", "name": "d", "container": "d.zarr"}],
        "num_iterations": 2,
        "output": str(tmp_path / "out"),
    }


@pytest.fixture(params=[".yaml", ".json"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    """A run file and a trainer config file, in one format."""
    dump = yaml.safe_dump if request.param == ".yaml" else json.dumps
    run = tmp_path / f"run{request.param}"
    run.write_text(dump(run_data(tmp_path)))
    trainer = tmp_path / f"trainer{request.param}"
    trainer.write_text(dump(TRAINER))
    return run, trainer


def test_what_the_file_holds_picks_the_class(files: tuple[Path, Path]) -> None:
    run_file, trainer_file = files
    run = load_config(run_file)
    assert isinstance(run, RunConfig)
    assert isinstance(run.trainer_config, DummyTrainerConfig)
    assert isinstance(run.architecture_config, UNetConfig)
    trainer = load_config(trainer_file)
    assert trainer == DummyTrainerConfig(
        name="dummy", batch_size=1, learning_rate=1e-4, mirror_augment=False
    )


def test_a_class_says_what_the_file_must_hold(files: tuple[Path, Path]) -> None:
    run_file, trainer_file = files
    assert load_config(run_file, RunConfig) == load_config(run_file)
    assert isinstance(load_config(trainer_file, TrainerConfig), DummyTrainerConfig)
    with pytest.raises(ConfigError) as caught:
        load_config(trainer_file, UNetConfig)
    assert str(trainer_file) in str(caught.value)
    assert "UNetConfig" in str(caught.value) or "architecture" in str(caught.value)


def test_the_other_kind_of_file_is_one_sentence(files: tuple[Path, Path]) -> None:
    run_file, trainer_file = files
    with pytest.raises(ConfigError) as caught:
        load_config(trainer_file, RunConfig)
    assert [issue.path for issue in caught.value.issues] == ["$"]
    assert "holds a DummyTrainerConfig config, not a run" in str(caught.value)
    with pytest.raises(ConfigError, match=r"holds a run .* not a TrainerConfig"):
        load_config(run_file, TrainerConfig)


def test_the_older_names_are_aliases(files: tuple[Path, Path]) -> None:
    run_file, trainer_file = files
    assert load_run_config(run_file) == load_config(run_file)
    assert read_config_file(trainer_file) == TRAINER
    assert unstructure_config(load_config(trainer_file)) == TRAINER


def test_problems_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    data = run_data(tmp_path)
    data["trainer_config"] = {**TRAINER, "batch_sise": 2}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert "$.trainer_config.batch_sise" in message


def test_validate_reads_through_it(files: tuple[Path, Path]) -> None:
    for path in files:
        result = subprocess.run(
            [sys.executable, "-m", "dacapo_trainers", "validate", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == unstructure_config(load_config(path))
