"""GunpowderTrainer: iteration bookkeeping, seeds, snapshots, worker life cycle."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import zarr
from gunpowder_helpers import (
    VOXEL_SIZE,
    FailingInWorkerPredictor,
    TinyTask,
    child_pids,
    tiny_model,
    write_volume,
)

from dacapo_trainers import ZarrContainer
from dacapo_trainers_gunpowder import GunpowderTrainerConfig, SimpleAugmentConfig
from dacapo_trainers_gunpowder._workers import DataWorkerError


def make(
    tmp_path: Path,
    *,
    task: Any = None,
    snapshots: bool = False,
    **settings: Any,
) -> tuple[Any, Any, Any]:
    dataset = write_volume(tmp_path, (24, 24, 24))
    model = tiny_model((8, 8, 8))
    config = GunpowderTrainerConfig(
        name="t", batch_size=2, learning_rate=1e-2, **{"num_data_fetchers": 2, **settings}
    )
    trainer = config.build_trainer()
    trainer.seed = 7
    optimizer = trainer.create_optimizer(model)
    container = ZarrContainer(tmp_path / "snapshots.zarr") if snapshots else None
    trainer.build_batch_provider([dataset], model, task or TinyTask(), container)
    return trainer, model, optimizer


def wait_for_no_children(timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        children = child_pids() - _unrelated
        if not children and not multiprocessing.active_children():
            return set()
        if time.monotonic() > deadline:
            return children
        time.sleep(0.05)


_unrelated: set[int] = set()


@pytest.fixture(autouse=True)
def _no_children_before() -> None:
    # children that exist before a test (e.g. a resource tracker) are not ours to check
    _unrelated.clear()
    _unrelated.update(child_pids())


def test_iterate_counts_from_the_trainer_iteration(tmp_path: Path) -> None:
    trainer, model, optimizer = make(tmp_path, num_data_fetchers=1)
    trainer.iteration = 5
    with trainer:
        seen = []
        for stats in trainer.iterate(3, model, optimizer, torch.device("cpu")):
            assert trainer.iteration == stats.iteration + 1
            seen.append(stats)
        assert [s.iteration for s in seen] == [5, 6, 7]
        # a second call goes on where the first stopped, with the same workers
        pids = trainer.worker_pids
        more = list(trainer.iterate(2, model, optimizer, "cpu"))
        assert [s.iteration for s in more] == [8, 9]
        assert trainer.worker_pids == pids
    losses = [s.loss for s in [*seen, *more]]
    assert all(type(loss) is float and np.isfinite(loss) and loss >= 0 for loss in losses), losses


def test_batches_depend_on_seed_and_index_only(tmp_path: Path) -> None:
    def first_batches(workers: int) -> list[np.ndarray]:
        trainer, _, _ = make(tmp_path, num_data_fetchers=workers, augments=[SimpleAugmentConfig()])
        with trainer:
            batches = trainer._start_batches(0)
            out = []
            for index in range(4):
                batch = batches.get(index)
                out.append(batch.arrays["raw"].copy())
                batch.release()
        return out

    one, two, inline = first_batches(1), first_batches(2), first_batches(0)
    for a, b, c in zip(one, two, inline, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # different batches (made by different worker processes with two workers) differ
    assert not np.array_equal(two[0], two[1])
    assert not np.array_equal(two[2], two[3])


def test_snapshots_are_dacapos_sample_0_with_world_geometry(tmp_path: Path) -> None:
    trainer, model, optimizer = make(
        tmp_path, num_data_fetchers=1, snapshots=True, snapshot_interval=2
    )
    reported = []
    trainer.add_snapshot_listener(lambda iteration, container: reported.append(iteration))
    with trainer:
        list(trainer.iterate(4, model, optimizer, torch.device("cpu")))
    assert reported == [0, 2]  # DaCapo: after the step of i when i % interval == 0
    root = zarr.open_group(str(tmp_path / "snapshots.zarr"), mode="r")
    assert sorted(root.group_keys()) == ["0", "2"]
    names = ["gradients", "gt", "mask", "prediction", "raw", "target", "weight"]
    assert sorted(root["0/volumes"].array_keys()) == names
    for name in names:  # sample 0, its single channel dropped; the mask of both samples
        array = root[f"0/volumes/{name}"]
        shape = {"raw": (8, 8, 8), "mask": (2, 6, 6, 6)}.get(name, (6, 6, 6))
        assert array.shape == shape, name
        assert array.attrs["voxel_size"] == list(VOXEL_SIZE)
        axes = ["c^", "z", "y", "x"] if name == "mask" else ["z", "y", "x"]
        assert array.attrs["axis_names"] == axes, name
    raw_offset = np.array(root["0/volumes/raw"].attrs["offset"])
    gt_offset = np.array(root["0/volumes/gt"].attrs["offset"])
    np.testing.assert_array_equal(gt_offset - raw_offset, [4, 4, 4])
    for name in ("target", "weight", "prediction", "gradients", "mask"):
        assert root[f"0/volumes/{name}"].attrs["offset"] == list(gt_offset), name
    # the first sample's raw and gt are the dataset's at the recorded offsets (no augments)
    source = zarr.open_group(str(tmp_path / "tiny.zarr"), mode="r")
    raw = np.pad(np.asarray(source["raw"]).astype(np.float32), 24)  # raw as the dataset gives it
    gt = np.pad(np.asarray(source["gt"]), 24)
    raw_begin, gt_begin = raw_offset // 4 + 24, gt_offset // 4 + 24
    raw_window = tuple(slice(b, b + 8) for b in raw_begin)
    np.testing.assert_array_equal(root["0/volumes/raw"][...], raw[raw_window])
    np.testing.assert_array_equal(
        root["0/volumes/gt"][...], gt[tuple(slice(b, b + 6) for b in gt_begin)]
    )
    # d loss / d prediction of the weighted MSE, a mean over the batch of 2 x 6³ voxels
    prediction = root["0/volumes/prediction"][...]
    target, weight = root["0/volumes/target"][...], root["0/volumes/weight"][...]
    expected = 2 * weight * (prediction - target) / (2 * 6**3)
    np.testing.assert_allclose(root["0/volumes/gradients"][...], expected, rtol=1e-5, atol=1e-9)


def test_workers_are_gone_after_exit(tmp_path: Path) -> None:
    trainer, model, optimizer = make(tmp_path, num_data_fetchers=2)
    with trainer:
        assert len(trainer.worker_pids) == 2
        list(trainer.iterate(1, model, optimizer, torch.device("cpu")))
        assert set(trainer.worker_pids) <= child_pids()
    assert trainer.worker_pids == []
    assert wait_for_no_children() == set()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_workers_are_gone_after_an_error_in_the_body(tmp_path: Path, error: type) -> None:
    trainer, model, optimizer = make(tmp_path, num_data_fetchers=2)
    with pytest.raises(error), trainer:
        for _ in trainer.iterate(5, model, optimizer, torch.device("cpu")):
            raise error("stop")
    assert wait_for_no_children() == set()


def test_a_worker_error_surfaces_with_its_message(tmp_path: Path) -> None:
    task = TinyTask(predictor=FailingInWorkerPredictor())
    trainer, model, optimizer = make(tmp_path, num_data_fetchers=2, task=task)
    expected = (
        r"data worker 0 failed producing batch 0: "
        r"RuntimeError: boom from the predictor in a worker \(in node PredictorTargets\)"
    )
    with pytest.raises(DataWorkerError, match=expected), trainer:
        list(trainer.iterate(2, model, optimizer, torch.device("cpu")))
    assert wait_for_no_children() == set()


def test_a_killed_worker_is_reported(tmp_path: Path) -> None:
    import os
    import signal

    trainer, model, optimizer = make(tmp_path, num_data_fetchers=1, prefetch_batches=1)
    with pytest.raises(DataWorkerError, match="exited with code"), trainer:
        os.kill(trainer.worker_pids[0], signal.SIGKILL)
        list(trainer.iterate(3, model, optimizer, torch.device("cpu")))
    assert wait_for_no_children() == set()


def test_the_warmup_schedule_round_trips(tmp_path: Path) -> None:
    trainer, model, optimizer = make(tmp_path, num_data_fetchers=0, warmup_iterations=10)
    with trainer:
        list(trainer.iterate(3, model, optimizer, torch.device("cpu")))
    state = trainer.state_dict()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * (0.01 + 0.99 * 3 / 10))
    other, other_model, _ = make(tmp_path, num_data_fetchers=0, warmup_iterations=10)
    other.load_state_dict(state)
    assert other.state_dict()["scheduler"]["last_epoch"] == 3
    # state loaded before the optimizer exists is applied when it is created
    fresh = GunpowderTrainerConfig(name="t", batch_size=2, learning_rate=1e-2).build_trainer()
    fresh.load_state_dict(state)
    fresh.create_optimizer(other_model)
    assert fresh.state_dict()["scheduler"]["last_epoch"] == 3


def test_refusals_give_reasons(tmp_path: Path) -> None:
    dataset = write_volume(tmp_path, (24, 24, 24))
    trainer = GunpowderTrainerConfig(name="t", batch_size=1, learning_rate=1e-3).build_trainer()
    assert trainer.cannot_train_reason([dataset]) is None
    assert trainer.can_train([dataset])
    dataset.gt = None
    assert "has no gt" in trainer.cannot_train_reason([dataset])
    assert not trainer.can_train([dataset])
    assert trainer.cannot_train_reason([]) == "there are no training datasets"
    small = write_volume(tmp_path, (6, 6, 6), name="small")
    reason = trainer.cannot_train_reason([small], tiny_model((8, 8, 8)))
    assert "smaller than the model input" in reason
    with pytest.raises(ValueError, match="smaller than the model input"):
        trainer.build_batch_provider([small], tiny_model((8, 8, 8)), TinyTask())
