"""DaCapo-written runs train through the CLI (DummyTrainer: core only), validate, start, resume."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from dacapo_run_files import dacapo_run, write_dacapo_data
from dacapo_written import (
    coordinate,
    dummy_trainer,
    write_file_store_yaml,
    write_mongo_json,
)
from run_helpers import run_cli as cli

from dacapo_trainers import (
    ConfigError,
    InMemoryArray,
    StartConfig,
    load_run_config,
    train,
)
from dacapo_trainers._outputs._observers import read_stats, read_validation
from dacapo_trainers._run._start_weights import load_start_weights
from dacapo_trainers._run._validation import Validation, read_window, tile_starts
from dacapo_trainers.reference import AffinitiesTaskConfig, CNNectomeUNetConfig


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dacapo_data(tmp_path_factory.mktemp("data"))


def stats_lines(output: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (output / "stats.jsonl").read_text().splitlines()]


def test_dacapo_yaml_trains_through_the_cli_and_validates(container: Path, tmp_path: Path) -> None:
    run_file = write_file_store_yaml(tmp_path / "run.yaml", dacapo_run(container, dummy_trainer()))
    assert "!!python/tuple" in run_file.read_text()
    result = cli("train", str(run_file), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: validation computes the task's loss" in result.stderr
    output = tmp_path / "runs" / "dacapo_run"
    lines = stats_lines(output)
    # DaCapo's runs store no checkpoint interval: ours defaults to 1000, and the end
    assert (output / "checkpoints" / "iteration_00000004.pt").is_file()
    assert [line["iteration"] for line in lines] == [0, 1, 1, 2, 3, 3]
    assert [("validation_loss" in line) for line in lines] == [0, 0, 1, 0, 0, 1]
    validation = read_validation(output / "stats.jsonl")
    assert [i for i, _ in validation] == [1, 3]
    assert all(np.isfinite(loss) and loss > 0 for _, loss in validation)
    assert [s.iteration for s in read_stats(output / "stats.jsonl")] == [0, 1, 2, 3]


def own_keys(document: dict[str, Any], output: Path, **changes: Any) -> dict[str, Any]:
    """The DaCapo run with our keys added: an output folder and frequent checkpoints."""
    return {**document, "output": str(output), "checkpoint_interval": 2, **changes}


def test_resume_is_exact_with_validation(container: Path, tmp_path: Path) -> None:
    document = dacapo_run(container, dummy_trainer(), num_iterations=4, validation_interval=1)
    whole = load_run_config(
        write_mongo_json(tmp_path / "whole.json", own_keys(document, tmp_path / "whole"))
    )
    train(whole, quiet=True)
    first = own_keys(document, tmp_path / "parts", num_iterations=2)
    train(load_run_config(write_mongo_json(tmp_path / "first.json", first)), quiet=True)
    second = own_keys(document, tmp_path / "parts")
    result = train(load_run_config(write_mongo_json(tmp_path / "second.json", second)), quiet=True)
    assert not isinstance(result, int) and result.resumed_from == 2

    def without_time(output: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in line.items() if k != "time"} for line in stats_lines(output)]

    assert without_time(tmp_path / "parts") == without_time(tmp_path / "whole")
    assert len(read_validation(tmp_path / "whole" / "stats.jsonl")) == 4


def test_repetition_changes_the_run(container: Path, tmp_path: Path) -> None:
    losses = []
    for repetition in (0, 1):
        document = dacapo_run(container, dummy_trainer(), num_iterations=1, repetition=repetition)
        output = tmp_path / f"rep{repetition}"
        path = write_mongo_json(tmp_path / f"rep{repetition}.json", own_keys(document, output))
        train(load_run_config(path), quiet=True)
        losses.append(read_stats(output / "stats.jsonl")[0].loss)
    assert losses[0] != losses[1]


def test_start_config_loads_weights_at_a_fresh_start_only(container: Path, tmp_path: Path) -> None:
    source = dacapo_run(container, dummy_trainer(), name="source", num_iterations=2)
    cli("train", str(write_mongo_json(tmp_path / "source.json", source)), "--quiet", cwd=tmp_path)
    start = {"__type__": "StartConfig", "run": "source", "criterion": "latest"}
    finetune = dacapo_run(
        container, dummy_trainer(), name="finetune", num_iterations=1, start_config=start
    )
    run_file = write_file_store_yaml(tmp_path / "finetune.yaml", finetune)
    first = cli("train", str(run_file), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "note: started from the weights of" in first.stderr
    assert "iteration_00000002.pt" in first.stderr
    finetune["num_iterations"] = 2
    finetune["validation_interval"] = 1  # a resume may validate more often
    write_file_store_yaml(run_file, finetune)
    resumed = cli("train", str(run_file), "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "start_config is not applied: the run resumes from its own checkpoint" in resumed.stderr
    losses = read_validation(tmp_path / "runs" / "finetune" / "stats.jsonl")
    assert [i for i, _ in losses] == [1]


def train_source(container: Path, tmp_path: Path) -> None:
    """One iteration of a run whose output is tmp_path/runs/source."""
    output = str(tmp_path / "runs" / "source")
    document = dacapo_run(container, dummy_trainer(), name="source", num_iterations=1)
    path = write_mongo_json(tmp_path / "s.json", {**document, "output": output})
    train(load_run_config(path), quiet=True)


def unet(fmaps_out: int = 4) -> Any:
    return CNNectomeUNetConfig(
        name="u",
        input_shape=[28, 28, 28],
        fmaps_in=1,
        fmaps_out=fmaps_out,
        num_fmaps=4,
        fmap_inc_factor=2,
        downsample_factors=[[2, 2, 2]],
    ).build()


def test_start_weights_follow_dacapo_matching_rules(container: Path, tmp_path: Path) -> None:
    train_source(container, tmp_path)
    saved = torch.load(
        tmp_path / "runs" / "source" / "checkpoints" / "iteration_00000001.pt", weights_only=True
    )["model"]
    folder = str(tmp_path / "runs" / "source")
    # the same model: every tensor, strictly
    same = AffinitiesTaskConfig(name="a").build().predictor.create_model(unet())
    message = load_start_weights(StartConfig(run=folder, criterion="1"), same)
    assert message.startswith("started from the weights of") and "matched" not in message
    assert all(torch.equal(v, saved[k]) for k, v in same.state_dict().items())
    # another head (2 offsets instead of 3): the common layers only
    other = AffinitiesTaskConfig(name="a", neighborhood=[[1, 0, 0], [0, 1, 0]]).build()
    partial = other.predictor.create_model(unet())
    message = load_start_weights(StartConfig(run=folder, criterion="latest"), partial)
    assert "matched by name and shape (DaCapo's rule)" in message
    for key, value in partial.state_dict().items():
        assert torch.equal(value, saved[key]) == key.startswith("architecture.")


@pytest.mark.parametrize(
    ("start", "path", "message"),
    [
        ({"run": "nowhere", "criterion": "latest"}, "$.start_config.run", "no run to start from"),
        ({"criterion": "best"}, "$.start_config.criterion", "unknown criterion 'best'"),
        ({"criterion": "7"}, "$.start_config.criterion", "it holds iteration_00000001.pt"),
    ],
)
def test_start_errors_are_clear(
    container: Path, tmp_path: Path, start: dict[str, str], path: str, message: str
) -> None:
    train_source(container, tmp_path)
    config = StartConfig(**{"run": str(tmp_path / "runs" / "source"), **start})
    with pytest.raises(ConfigError) as info:
        load_start_weights(config, unet())
    assert info.value.issues[0].path == path and message in info.value.issues[0].message


def test_a_start_that_matches_nothing_is_an_error(container: Path, tmp_path: Path) -> None:
    train_source(container, tmp_path)
    from dacapo_trainers.reference import UNetConfig

    different = UNetConfig(name="u", input_shape=[20, 20, 20], downsample_factors=[[2, 2, 2]])
    with pytest.raises(ConfigError, match=r"none of the .* tensors .* matches the model"):
        load_start_weights(
            StartConfig(run=str(tmp_path / "runs" / "source"), criterion="latest"),
            different.build(),
        )


def test_refusals_at_run_start(container: Path, tmp_path: Path) -> None:
    far = dacapo_run(container, dummy_trainer(), num_iterations=1, output=str(tmp_path / "far"))
    far["task_config"]["neighborhood"] = [coordinate(1000, 0, 0)]
    with pytest.raises(ConfigError, match=r"offset \[1000, 0, 0\] reaches past the model's output"):
        train(load_run_config(write_mongo_json(tmp_path / "far.json", far)), quiet=True)
    assert not (tmp_path / "far").exists()  # refused before anything was written


# -- the validation loss itself --------------------------------------------------------------


def test_tiles_cover_the_extent_flush() -> None:
    assert tile_starts(0, 10, 4) == [0, 4, 6]
    assert tile_starts(8, 4, 4) == [8]
    assert tile_starts(8, 3, 4) == [8]


def test_read_window_pads_with_zeros() -> None:
    array = InMemoryArray(np.arange(1, 7).reshape(2, 3), voxel_size=(2, 2), offset=(2, 2))
    window = read_window(array, offset=(0, 4), shape=(3, 3))
    np.testing.assert_array_equal(window, [[0, 0, 0], [2, 3, 0], [5, 6, 0]])


def test_validation_is_deterministic_and_leaves_random_states_alone(container: Path) -> None:
    run = load_run_config_from(container)
    task = run.task_config.build()
    model = task.create_model(run.architecture_config.build())  # type: ignore[attr-defined]
    datasets = [config.build() for config in run.validate_configs]
    validation = Validation(datasets, task, model, interval=3)
    assert [validation.due(i) for i in (1, 3, 6, 7)] == [False, True, True, False]
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    model.train()
    first = validation.loss(model, torch.device("cpu"))
    second = validation.loss(model, torch.device("cpu"))
    assert first == second and np.isfinite(first)
    assert model.training
    assert random.getstate() == states[0]
    np.testing.assert_array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])


def load_run_config_from(container: Path) -> Any:
    from dacapo_trainers import structure_config
    from dacapo_trainers._configs._run_config import RunConfig

    return structure_config(dacapo_run(container, dummy_trainer()), RunConfig)
