"""Run files in DaCapo main's shape (run-level batch_size, num_workers, snapshot_interval,
learning_rate; GunpowderTrainerConfig.sample_strategy) load and train.

The files are written as DaCapo main's file store writes them (``yaml.dump`` of its
converter's output) or as JSON. Each test needs its trainer's plugin (skipped without it);
nox runs this file in the plugin sessions.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from dacapo_main_written import (
    main_gunpowder_trainer,
    main_run,
)
from dacapo_run_files import write_dacapo_data
from dacapo_written import write_file_store_yaml, write_mongo_json

from dacapo_trainers import (
    ConfigError,
    RunConfig,
    hookimpl,
    load_config,
    train,
    unstructure_config,
)
from dacapo_trainers._outputs._observers import read_stats

needs_gunpowder = pytest.mark.skipif(
    importlib.util.find_spec("dacapo_trainers_gunpowder") is None,
    reason="needs dacapo_trainers_gunpowder",
)


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dacapo_data(tmp_path_factory.mktemp("data"))


class Recorder:
    """Observes what the trainer of a run was built with, and when snapshots were written."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.learning_rate: float | None = None
        self.snapshots: list[int] = []

    @hookimpl
    def dacapo_trainers_train_start(self, trainer: Any, optimizer: Any) -> None:
        self.trainer = trainer
        self.learning_rate = optimizer.param_groups[0]["initial_lr"]

    @hookimpl
    def dacapo_trainers_train_snapshot_written(self, iteration: int) -> None:
        self.snapshots.append(iteration)


@needs_gunpowder
def test_main_yaml_trains_with_its_run_level_fields(container: Path, tmp_path: Path) -> None:
    document = main_run(
        container,
        main_gunpowder_trainer("integral_mask"),
        batch_size=3,
        num_workers=1,
        snapshot_interval=2,
        learning_rate=5e-4,
    )
    run_file = write_file_store_yaml(tmp_path / "main_run.yaml", document)
    text = run_file.read_text()
    assert "!!python/tuple" in text and "_input_shape" in text and "repetition: null" in text
    recorder = Recorder()
    result = train(
        attrs.evolve(load_config(run_file, RunConfig), output=tmp_path / "out"),
        observers=[recorder],
        quiet=True,
    )
    assert result.iteration == 4
    trainer = recorder.trainer
    assert trainer.batch_size == 3
    assert trainer.trainer_config.num_data_fetchers == 1
    assert trainer.trainer_config.snapshot_interval == 2
    assert trainer.trainer_config.sample_strategy == "integral_mask"
    assert recorder.learning_rate == pytest.approx(5e-4)
    assert recorder.snapshots == [0, 2]
    stats = read_stats(tmp_path / "out" / "stats.jsonl")
    assert [s.iteration for s in stats] == [0, 1, 2, 3]


@needs_gunpowder
def test_main_json_loads_with_every_sample_strategy(container: Path, tmp_path: Path) -> None:
    for strategy in ("integral_mask", "reject", "sample_points", None):
        document = main_run(container, main_gunpowder_trainer(strategy), batch_size=2)
        run = load_config(write_mongo_json(tmp_path / "run.json", document), RunConfig)
        assert run.trainer_config.sample_strategy == strategy
        assert run.resolved_trainer_config().batch_size == 2
        assert run.repetition == 0
        assert run.architecture_config.input_shape == [28, 28, 28]


@needs_gunpowder
def test_a_field_set_on_the_run_and_in_the_trainer_names_both(
    container: Path, tmp_path: Path
) -> None:
    trainer = {**main_gunpowder_trainer(), "batch_size": 2, "num_data_fetchers": 3}
    document = main_run(container, trainer, batch_size=4, num_workers=2)
    with pytest.raises(ConfigError) as raised:
        load_config(write_file_store_yaml(tmp_path / "run.yaml", document), RunConfig)
    message = str(raised.value)
    assert "$.batch_size" in message and "$.trainer_config.batch_size" in message
    assert "run.yaml" in message


@needs_gunpowder
def test_the_trainers_value_applies_where_the_run_leaves_it_unset(
    container: Path, tmp_path: Path
) -> None:
    trainer = {**main_gunpowder_trainer(), "batch_size": 2, "num_data_fetchers": 3}
    document = main_run(container, trainer)
    for key in ("batch_size", "num_workers", "learning_rate"):
        document[key] = None
    run = load_config(write_mongo_json(tmp_path / "run.json", document), RunConfig)
    resolved = run.resolved_trainer_config()
    assert (resolved.batch_size, resolved.num_data_fetchers) == (2, 3)
    assert resolved.learning_rate == 1e-3  # the default of both DaCapo versions


@needs_gunpowder
def test_input_shape_under_both_names_is_refused(container: Path, tmp_path: Path) -> None:
    document = main_run(container, main_gunpowder_trainer())
    document["architecture_config"]["input_shape"] = [28, 28, 28]
    with pytest.raises(ConfigError, match="'_input_shape' and 'input_shape'"):
        load_config(write_mongo_json(tmp_path / "run.json", document), RunConfig)


@needs_gunpowder
def test_an_unknown_sample_strategy_lists_the_choices(container: Path, tmp_path: Path) -> None:
    document = main_run(container, main_gunpowder_trainer("integral"))
    with pytest.raises(ConfigError) as raised:
        load_config(write_mongo_json(tmp_path / "run.json", document), RunConfig)
    message = str(raised.value)
    assert "$.trainer_config.sample_strategy" in message
    assert "'integral_mask'" in message and "null" in message


@needs_gunpowder
def test_a_run_with_run_level_fields_round_trips(container: Path, tmp_path: Path) -> None:
    document = main_run(container, main_gunpowder_trainer("reject"), batch_size=2)
    run = load_config(write_mongo_json(tmp_path / "run.json", document), RunConfig)
    again = load_config(write_mongo_json(tmp_path / "again.json", unstructure_config(run)))
    assert again == run


@pytest.mark.skipif(
    importlib.util.find_spec("dacapo_trainers_simple_tensor") is None,
    reason="needs dacapo_trainers_simple_tensor",
)
def test_num_workers_that_the_trainer_has_no_use_for_is_noted(
    container: Path, tmp_path: Path
) -> None:
    trainer = {"__type__": "SimpleTensorTrainerConfig", "name": "simple"}
    document = {**main_run(container, trainer, batch_size=2, num_workers=2), "output": "out"}
    run_file = write_file_store_yaml(tmp_path / "run.yaml", document)
    result = subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "note: num_workers ($.num_workers) is not used: SimpleTensorTrainerConfig takes no "
        "such setting"
    ) in result.stderr
    assert [s.iteration for s in read_stats(tmp_path / "out" / "stats.jsonl")] == [0, 1, 2, 3]


@pytest.mark.skipif(
    importlib.util.find_spec("dacapo_trainers_distributed") is None,
    reason="needs dacapo_trainers_distributed",
)
@needs_gunpowder
def test_a_setting_the_trainer_config_refuses_is_a_config_error(
    container: Path, tmp_path: Path
) -> None:
    trainer = {"__type__": "DistributedTrainerConfig", "trainer_config": main_gunpowder_trainer()}
    document = main_run(container, trainer, batch_size=4)
    with pytest.raises(ConfigError) as raised:
        load_config(write_mongo_json(tmp_path / "run.json", document), RunConfig)
    message = str(raised.value)
    assert "cannot go into DistributedTrainerConfig" in message and "$.batch_size" in message
