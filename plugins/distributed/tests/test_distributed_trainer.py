"""DistributedTrainer in this process: delegation, the DDP wrapper, state per rank, errors.

A one-rank gloo group on a HashStore (no network) stands in for torchrun where a group is
needed; the real multi-process behaviour is tested in test_distributed_training.py and
test_distributed_faults.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from dacapo_trainers import RunLaunch
from dacapo_trainers.reference import AffinitiesTaskConfig, UNetConfig, ZarrDatasetConfig
from dacapo_trainers_distributed import (
    DistributedTrainer,
    DistributedTrainerConfig,
    LaunchError,
    RankFailureError,
    rank_seed,
)
from dacapo_trainers_distributed._model import DistributedModel
from dacapo_trainers_distributed._process_group import (
    ProcessGroup,
    in_torchrun,
    is_communication_error,
)
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig

CPU = torch.device("cpu")
TORCHRUN_VARIABLES = ("TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def make_trainer(**fields: Any) -> DistributedTrainer:
    inner = SimpleTensorTrainerConfig(
        name="simple", batch_size=1, learning_rate=0.01, optimizer="SGD", warmup_iterations=0
    )
    trainer = DistributedTrainerConfig(trainer_config=inner, **fields).build_trainer()
    assert isinstance(trainer, DistributedTrainer)
    return trainer


@pytest.fixture
def outside_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def setup(demo_container: Path) -> tuple[Any, Any, list[Any]]:
    torch.manual_seed(0)
    architecture = UNetConfig(
        name="tiny", input_shape=[20, 20, 20], num_fmaps=2, downsample_factors=[[2, 2, 2]]
    )
    task = AffinitiesTaskConfig(name="affinities").build()
    model = task.create_model(architecture.build())
    dataset = ZarrDatasetConfig(name="demo", container=str(demo_container), mask="mask").build()
    return model, task, [dataset]


@pytest.fixture
def one_rank_group() -> Iterator[ProcessGroup]:
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield ProcessGroup(0, 1, timeout=5.0, store=store, owned=False)
    finally:
        dist.destroy_process_group()


def test_without_a_process_group_the_inner_trainer_runs_alone(
    outside_torchrun: None, setup: tuple[Any, Any, list[Any]]
) -> None:
    model, task, datasets = setup
    trainer = make_trainer()
    assert not in_torchrun()
    assert trainer.is_output_process and trainer.rank == 0 and trainer.world_size == 1
    trainer.seed = 5
    assert trainer.can_train(datasets) and trainer.cannot_train_reason(datasets) is None
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider(datasets, model, task)
    assert trainer.inner.seed == rank_seed(5, 0) == 5
    trainer.iteration = 3
    assert trainer.inner.iteration == 3
    with trainer:
        stats = list(trainer.iterate(2, model, optimizer, CPU))
    assert [s.iteration for s in stats] == [3, 4]
    assert trainer.iteration == trainer.inner.iteration == 5


def test_rank_1_gets_its_own_seed_and_no_snapshot_container(
    monkeypatch: pytest.MonkeyPatch, setup: tuple[Any, Any, list[Any]]
) -> None:
    model, task, datasets = setup
    monkeypatch.setenv("RANK", "1")
    trainer = make_trainer()
    assert not trainer.is_output_process
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(trainer.inner, "build_batch_provider", lambda *args: calls.append(args))
    trainer.seed = 5
    trainer.build_batch_provider(datasets, model, task, Path("snapshots.zarr"))
    assert calls == [(datasets, model, task, None)]
    assert trainer.inner.seed == rank_seed(5, 1) != 5


def test_the_model_is_wrapped_in_ddp_that_forwards_the_models_attributes(
    outside_torchrun: None, setup: tuple[Any, Any, list[Any]], one_rank_group: ProcessGroup
) -> None:
    model, task, datasets = setup
    trainer = make_trainer()
    trainer.group = one_rank_group
    trainer.seed = 0
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider(datasets, model, task)
    seen: list[Any] = []
    inner_iterate = trainer.inner.iterate

    def iterate(num: int, wrapped: Any, *args: Any) -> Any:
        seen.append(wrapped)
        return inner_iterate(num, wrapped, *args)

    trainer.inner.iterate = iterate  # type: ignore[method-assign]
    with trainer:
        stats = list(trainer.iterate(2, model, optimizer, CPU))
    assert [s.iteration for s in stats] == [0, 1]
    [wrapped] = seen
    assert isinstance(wrapped, DistributedModel)
    assert wrapped.module is model
    assert wrapped.output_shape == model.output_shape
    assert wrapped.num_in_channels == model.num_in_channels
    with pytest.raises(AttributeError):
        _ = wrapped.no_such_attribute
    # The forward pass of iteration 1 left its mark (what a failure diagnosis reads).
    assert one_rank_group._store is not None
    assert one_rank_group._store.get("forward/0") == b"1"


def test_each_rank_loads_its_own_saved_state(outside_torchrun: None) -> None:
    states = [{"generator": torch.Generator().manual_seed(seed).get_state()} for seed in (1, 2)]
    saved = {"world_size": 2, "ranks": states}
    for rank in (0, 1):
        trainer = make_trainer()
        trainer.group = ProcessGroup(rank, 2, timeout=5.0, store=None, owned=False)
        trainer.load_state_dict(saved)
        assert torch.equal(trainer.inner.state_dict()["generator"], states[rank]["generator"])
    grown = make_trainer()
    grown.group = ProcessGroup(2, 3, timeout=5.0, store=None, owned=False)
    with pytest.warns(UserWarning, match="rank 2 resumes with rank 0's and repeats its"):
        grown.load_state_dict(saved)
    assert torch.equal(grown.inner.state_dict()["generator"], states[0]["generator"])


def test_state_dict_without_a_group_holds_the_one_rank(outside_torchrun: None) -> None:
    trainer = make_trainer()
    state = trainer.state_dict()
    assert state == {"world_size": 1, "ranks": [trainer.inner.state_dict()]}


def test_a_failed_collective_names_the_ranks_that_did_not_arrive() -> None:
    store = dist.HashStore()
    groups = [ProcessGroup(rank, 3, timeout=7.0, store=store, owned=False) for rank in range(3)]
    groups[0].mark("forward", 4)
    groups[1].mark("forward", 4)
    groups[2].mark("forward", 3)
    cause = RuntimeError("Timed out waiting 7000ms for recv operation to complete")
    error = groups[0].failure(cause, "forward", 4, "the gradient all-reduce of iteration 4")
    assert isinstance(error, RankFailureError)
    assert (error.rank, error.missing) == (0, (2,))
    assert str(error) == (
        "rank 0 of 3: the gradient all-reduce of iteration 4 failed: rank 2 did not reach it "
        "(rank 2's last forward pass: iteration 3); that process died or hangs (every rank "
        "waits at most timeout = 7 s for the others). Cause: Timed out waiting 7000ms for "
        "recv operation to complete"
    )
    assert groups[0].broken
    fresh = ProcessGroup(0, 2, timeout=7.0, store=dist.HashStore(), owned=False)
    error = fresh.failure(cause, "barrier", 1, "barrier 1")
    assert error.missing == (1,)
    assert "rank 1's last barrier: none yet" in str(error)
    groups[2].mark("forward", 4)
    error = groups[0].failure(cause, "forward", 4, "the loss all-reduce of iteration 4")
    assert error.missing == ()
    assert "no rank is behind by the progress marks" in str(error)


def test_only_communication_failures_are_diagnosed() -> None:
    assert is_communication_error(RuntimeError("[gloo] Connection closed by peer"))
    assert is_communication_error(dist.DistBackendError("NCCL watchdog"))
    assert not is_communication_error(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_communication_error(ValueError("timed out"))
    group = ProcessGroup(0, 2, timeout=1.0, store=None, owned=False)

    def shape_bug() -> None:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        group.guarded(shape_bug, "barrier", 1, "barrier 1")


def test_several_machines_need_a_rendezvous_endpoint(outside_torchrun: None) -> None:
    trainer = make_trainer(nnodes=2)
    with pytest.raises(LaunchError, match="sets no rdzv_endpoint"):
        trainer.launch_run(
            RunLaunch({}, Path("run.yaml"), Path("out").absolute(), output_claimed=False)
        )
