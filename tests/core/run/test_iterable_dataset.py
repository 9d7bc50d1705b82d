"""``iterable_dataset(run)`` in a plain ``torch.utils.data.DataLoader``: DaCapo main's sample
dicts, one distinct stream per worker, reproducible for a seed, no process left behind.

Both batch trainers train on real zarr data (a DaCapo-main run file); each test needs its
plugin and skips without it (nox runs this file in the tests-simple-tensor and
tests-gunpowder sessions).
"""

from __future__ import annotations

import gc
import importlib.util
import multiprocessing
import pickle
import subprocess
import sys
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
from dacapo_main_written import main_gunpowder_trainer, main_run
from dacapo_run_files import dacapo_run, write_dacapo_data
from dacapo_written import dummy_trainer, write_file_store_yaml
from torch.utils.data import DataLoader

from dacapo_trainers import ConfigError, RunConfig, iterable_dataset, load_config


def simple_tensor_trainer() -> dict[str, Any]:
    """SimpleTensorTrainerConfig in DaCapo main's shape: no batch size, no learning rate."""
    return {"__type__": "SimpleTensorTrainerConfig", "name": "simple"}


TRAINERS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "simple-tensor": ("dacapo_trainers_simple_tensor", simple_tensor_trainer),
    "gunpowder": ("dacapo_trainers_gunpowder", lambda: main_gunpowder_trainer("integral_mask")),
}


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dacapo_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(params=sorted(TRAINERS))
def run_file(request: pytest.FixtureRequest, container: Path, tmp_path: Path) -> Path:
    module, trainer = TRAINERS[request.param]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"needs {module}")
    document = main_run(container, trainer(), batch_size=2, num_workers=3)
    return write_file_store_yaml(tmp_path / "main_run.yaml", document)


def batches(dataset: Any, count: int, *, batch_size: int = 3, workers: int = 0) -> list[dict]:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    iterator = iter(loader)
    taken = list(islice(iterator, count))
    del iterator  # shuts the workers down
    gc.collect()
    return taken


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[key], b[key]) for key in a)


def test_samples_have_dacapo_mains_keys_shapes_and_dtypes(run_file: Path) -> None:
    run = load_config(run_file, RunConfig)
    [batch] = batches(iterable_dataset(run), 1, batch_size=3)
    assert sorted(batch) == ["gt", "mask", "raw", "target", "weight"]
    output = run.architecture_config.build().output_shape
    assert batch["raw"].shape == (3, 1, 28, 28, 28) and batch["raw"].dtype == torch.float32
    assert batch["target"].shape == (3, 3, *output) and batch["target"].dtype == torch.float32
    assert batch["weight"].shape == batch["target"].shape
    assert batch["weight"].dtype == torch.float32
    assert batch["gt"].shape == (3, *output) and not batch["gt"].is_floating_point()
    assert batch["mask"].shape == (3, *output)
    assert set(batch["mask"].unique().tolist()) <= {0, 1}  # gt's region (no mask given)
    assert bool((batch["mask"].flatten(1).sum(dim=1) > 0).all())
    assert float(batch["raw"].min()) >= 0.0 and float(batch["raw"].max()) <= 1.0
    assert 0.0 < float(batch["target"].mean()) < 1.0  # affinities of real labels


def test_the_same_seed_gives_the_same_samples_and_another_seed_others(run_file: Path) -> None:
    run = load_config(run_file, RunConfig)
    first = batches(iterable_dataset(run_file), 2)
    again = batches(iterable_dataset(run), 2)
    other = batches(iterable_dataset(attrs.evolve(run, seed=7)), 2)
    assert all(same(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0]["raw"], other[0]["raw"])


def test_two_workers_make_distinct_reproducible_streams(run_file: Path) -> None:
    dataset = iterable_dataset(run_file)
    alone = batches(dataset, 2, batch_size=2)
    # the DataLoader takes its batches from worker 0, 1, 0, 1, ...
    workers = batches(dataset, 4, batch_size=2, workers=2)
    assert same(workers[0], alone[0]) and same(workers[2], alone[1])  # worker 0: the run's seed
    assert not torch.equal(workers[0]["raw"], workers[1]["raw"])
    assert not torch.equal(workers[1]["raw"], workers[3]["raw"])
    again = batches(dataset, 4, batch_size=2, workers=2)
    assert all(same(a, b) for a, b in zip(workers, again, strict=True))
    assert multiprocessing.active_children() == []  # no process left behind


def test_the_dataset_pickles_for_spawned_workers(run_file: Path) -> None:
    dataset = pickle.loads(pickle.dumps(iterable_dataset(run_file)))
    sample = next(iter(dataset))
    assert sample["raw"].shape == (1, 28, 28, 28)


def test_a_trainer_that_makes_no_batches_is_refused(container: Path, tmp_path: Path) -> None:
    run_file = write_file_store_yaml(tmp_path / "run.yaml", dacapo_run(container, dummy_trainer()))
    with pytest.raises(ConfigError, match=r"\$\.trainer_config: .*not a batch trainer"):
        iterable_dataset(run_file)


def test_importing_the_package_still_imports_no_torch() -> None:
    code = "import sys, dacapo_trainers; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_stream_without_workers_is_the_runs_own_batches(run_file: Path) -> None:
    """What ``dacapo-trainers train`` draws: the trainer as the driver builds it (its data
    workers included), seeded with the run's seed."""
    from dacapo_trainers import default_registry
    from dacapo_trainers._run._run_inputs import build_trainer, open_inputs

    run = load_config(run_file, RunConfig)
    trainer = build_trainer(run, default_registry(), None)
    inputs = open_inputs(run, trainer, default_registry(), None)
    trainer.build_batch_provider(inputs.datasets, inputs.model, inputs.task)
    with trainer:
        trained = []
        for index in range(2):
            batch = trainer.next_batch(index)
            trained.append(batch.raw.clone())
            batch.release()
    streamed = batches(iterable_dataset(run), 2, batch_size=2)
    assert all(torch.equal(a, b["raw"]) for a, b in zip(trained, streamed, strict=True))
