"""Two ranks on CPU with gloo, through ``dacapo-trainers train``: the result of DDP training.

One run (module fixture) trains 2 iterations on 2 ranks and checkpoints after each. The tests
rebuild, in this process, the model the driver built and the batch each rank drew, and check
the run against a single-process step on both batches together.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import torch
from distributed_helpers import (
    inner_config,
    load_checkpoint,
    run_data,
    stats_iterations,
    train,
)

from dacapo_trainers import RunConfig, open_array, structure_config
from dacapo_trainers_distributed import rank_seed
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig

pytestmark = pytest.mark.slow
CPU = torch.device("cpu")


@attrs.define
class TwoRankRun:
    run: dict[str, Any]
    output: Path
    stderr: str


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory: pytest.TempPathFactory, demo_container: Path) -> TwoRankRun:
    folder = tmp_path_factory.mktemp("two_ranks")
    output = folder / "out"
    inner = inner_config(snapshot_interval=1)
    run = run_data(output, demo_container, inner, num_iterations=2, checkpoint_interval=1)
    result = train(run, folder)
    assert result.returncode == 0, result.stderr
    return TwoRankRun(run, output, result.stderr)


class _Recorder:
    """A loss that records target and weight, around the task's own loss."""

    def __init__(self, loss: Any) -> None:
        self.loss = loss
        self.targets: list[torch.Tensor] = []
        self.weights: list[torch.Tensor] = []

    def compute(self, prediction: Any, target: Any, weight: Any = None) -> Any:
        self.targets.append(target.detach().clone())
        self.weights.append(weight.detach().clone())
        return self.loss.compute(prediction, target, weight)


@attrs.define
class _RecordingTask:
    predictor: Any
    loss: _Recorder


@attrs.define
class Batch:
    raw: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    loss: float


def initial_model(run: RunConfig) -> tuple[torch.nn.Module, Any]:
    """The model as the driver builds it on every rank (same seed, same order), and the task."""
    torch.manual_seed(run.seed)
    architecture = run.architecture_config.build()
    task = run.task_config.build()
    model = task.predictor.create_model(architecture)
    return model, task


def first_batch(run: RunConfig, model: torch.nn.Module, task: Any, rank: int) -> Batch:
    """The batch rank ``rank`` trains on first, drawn by a single-process inner trainer."""
    distributed = run.trainer_config
    inner = distributed.trainer_config  # type: ignore[attr-defined]
    assert isinstance(inner, SimpleTensorTrainerConfig)
    trainer = attrs.evolve(inner, snapshot_interval=None).build_trainer()
    trainer.seed = rank_seed(run.seed, rank)
    model = copy.deepcopy(model)
    inputs: list[torch.Tensor] = []
    model.register_forward_hook(lambda module, args, output: inputs.append(args[0].clone()))
    recorder = _Recorder(task.loss)
    optimizer = trainer.create_optimizer(model)
    datasets = [config.build() for config in run.datasets]
    trainer.build_batch_provider(datasets, model, _RecordingTask(task.predictor, recorder))
    [stats] = list(trainer.iterate(1, model, optimizer, CPU))
    return Batch(inputs[0], recorder.targets[0], recorder.weights[0], stats.loss)


@pytest.fixture(scope="module")
def reference(two_rank_run: TwoRankRun) -> tuple[RunConfig, torch.nn.Module, Any, list[Batch]]:
    run = structure_config(two_rank_run.run, RunConfig)
    model, task = initial_model(run)
    return run, model, task, [first_batch(run, model, task, rank) for rank in (0, 1)]


def test_one_ddp_step_equals_one_step_on_both_ranks_batches(
    two_rank_run: TwoRankRun, reference: tuple[RunConfig, torch.nn.Module, Any, list[Batch]]
) -> None:
    run, model, task, batches = reference
    model = copy.deepcopy(model)
    learning_rate = run.trainer_config.learning_rate
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    raw = torch.cat([b.raw for b in batches])
    target = torch.cat([b.target for b in batches])
    weight = torch.cat([b.weight for b in batches])
    optimizer.zero_grad()
    task.loss.compute(model(raw), target, weight).backward()
    optimizer.step()

    trained = load_checkpoint(two_rank_run.output, 1)["model"]
    expected = model.state_dict()
    assert trained.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(trained[name], value, rtol=1e-5, atol=1e-6, msg=name)
    initial = reference[1].state_dict()
    assert any(not torch.equal(trained[name], initial[name]) for name in initial)


def test_ranks_draw_different_crops(
    two_rank_run: TwoRankRun, reference: tuple[RunConfig, torch.nn.Module, Any, list[Batch]]
) -> None:
    batches = reference[3]
    assert not torch.equal(batches[0].raw, batches[1].raw)
    # The logged loss is the mean over the ranks: rank 1 trained on its own crop.
    first = json.loads((two_rank_run.output / "stats.jsonl").read_text().splitlines()[0])
    assert batches[0].loss != pytest.approx(batches[1].loss, rel=1e-3)
    assert first["loss"] == pytest.approx((batches[0].loss + batches[1].loss) / 2, rel=1e-5)
    # Each rank's data state is checkpointed, and they differ.
    state = load_checkpoint(two_rank_run.output, 2)["trainer"]
    assert state["world_size"] == 2
    generators = [rank_state["generator"] for rank_state in state["ranks"]]
    assert len(generators) == 2
    assert not torch.equal(generators[0], generators[1])


def test_only_rank_0_writes_outputs(
    two_rank_run: TwoRankRun, reference: tuple[RunConfig, torch.nn.Module, Any, list[Batch]]
) -> None:
    output = two_rank_run.output
    assert stats_iterations(output) == [0, 1]
    checkpoints = sorted(path.name for path in (output / "checkpoints").iterdir())
    assert checkpoints == [
        "iteration_00000001.pt",
        "iteration_00000001.pt.sha256",
        "iteration_00000002.pt",
        "iteration_00000002.pt.sha256",
    ]
    assert sorted(path.name for path in output.iterdir()) == [
        "checkpoints",
        "loss.png",
        "run_config.json",
        "snapshots",  # the snapshot previews
        "snapshots.zarr",
        "stats.jsonl",
    ]
    # The snapshot of iteration 0 is rank 0's batch (rank 1 got no snapshot container).
    snapshot = open_array(output / "snapshots.zarr", "0/volumes/raw").to_numpy()
    np.testing.assert_array_equal(snapshot, reference[3][0].raw[0, 0].numpy())  # sample 0
