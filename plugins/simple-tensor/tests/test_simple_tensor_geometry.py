"""Geometry as DaCapo: upsampling models (gt finer than raw), gt with channels, raw as the
dataset gives it, and sample points outside the dataset refused rather than clipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import zarr
from simple_tensor_helpers import SimpleTask, make_dataset

from dacapo_trainers import Array, InMemoryArray, ZarrContainer
from dacapo_trainers.testing import ToyUpsamplingModel
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig


class GtAsTarget:
    """Target: gt (channels kept, or one added) as float; weight: the mask as float."""

    def create_target(self, gt: Array) -> Array:
        data = np.asarray(gt.data, dtype=np.float32)
        data = data if data.ndim > len(gt.voxel_size) else data[np.newaxis]
        return InMemoryArray(data, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_weight(self, gt: Array, target: Array, mask: Array | None = None) -> Array:
        assert mask is not None
        data = np.broadcast_to(np.asarray(mask.data, dtype=np.float32), target.data.shape)
        return InMemoryArray(data.copy(), voxel_size=gt.voxel_size, offset=gt.offset)


class Dataset:
    def __init__(self, name: str, raw: Any, gt: Any, points: Any = None) -> None:
        self.name, self.raw, self.gt, self.mask = name, raw, gt, None
        self.weight = 1.0
        self.sample_points = points


def upsampled(channels: bool = False) -> tuple[Dataset, np.ndarray]:
    """raw labels per 4 nm voxel (float, as a normalized dataset gives it) and the same labels
    as gt at 2 nm (two one-hot channels, as DaCapo's BinarizeArrayConfig, or one array)."""
    labels = np.random.default_rng(5).integers(0, 2, size=(24, 24, 24)).astype(np.uint8)
    raw = InMemoryArray(labels.astype(np.float32), voxel_size=(4, 4, 4), offset=(0, 0, 0))
    fine = np.kron(labels, np.ones((2, 2, 2), dtype=np.uint8))
    gt_data = np.stack([fine == 0, fine == 1]).astype(np.uint8) if channels else fine
    gt = InMemoryArray(gt_data, voxel_size=(2, 2, 2), offset=(0, 0, 0))
    return Dataset("up", raw, gt), labels


def _setup(datasets: list[Any], model: Any, **settings: Any) -> tuple[Any, Any]:
    config = SimpleTensorTrainerConfig(
        name="t", batch_size=3, learning_rate=1e-2, warmup_iterations=0, **settings
    )
    trainer = config.build_trainer()
    trainer.seed = 11
    trainer.create_optimizer(model)
    task = SimpleTask(GtAsTarget())
    trainer.build_batch_provider(datasets, model, task, settings.get("container"))
    return trainer, task


@pytest.mark.parametrize("channels", [False, True])
def test_an_upsampling_model_trains_with_gt_aligned_to_raw(channels: bool) -> None:
    dataset, _ = upsampled(channels)
    model = ToyUpsamplingModel(num_out_channels=2 if channels else 1)
    trainer, task = _setup([dataset], model)
    stats = list(trainer.iterate(6, model, trainer._optimizer, "cpu"))
    assert all(np.isfinite(s.loss) for s in stats)
    # target voxel j (2 nm) is raw voxel 1 + j // 2 (the output starts 4 nm into the input),
    # whatever flips and transposes were drawn
    for raw, target in zip(model.inputs, task.loss.targets, strict=True):
        coarse = raw[:, 0, 1:9, 1:9, 1:9]
        fine = coarse.repeat_interleave(2, 1).repeat_interleave(2, 2).repeat_interleave(2, 3)
        if channels:
            assert target.shape == (3, 2, 16, 16, 16)
            assert torch.equal(target[:, 1], fine) and torch.equal(target[:, 0], 1 - fine)
        else:
            assert torch.equal(target[:, 0], fine)


def test_upsampled_snapshots_are_on_the_prediction_grid(tmp_path: Path) -> None:
    dataset, _ = upsampled(channels=True)
    model = ToyUpsamplingModel(num_out_channels=2)
    container = ZarrContainer(tmp_path / "s.zarr")
    config = SimpleTensorTrainerConfig(
        name="t", batch_size=1, learning_rate=1e-2, snapshot_interval=1
    )
    trainer = config.build_trainer()
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, SimpleTask(GtAsTarget()), container)
    list(trainer.iterate(1, model, optimizer, "cpu"))
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    snapshot = root["0/volumes"]  # DaCapo's layout: sample 0
    assert snapshot["raw"].attrs["voxel_size"] == [4, 4, 4]
    assert snapshot["mask"].shape == (2, 16, 16, 16)  # DaCapo's ones of gt's shape
    for name in ("gt", "target", "weight", "prediction", "gradients", "mask"):
        assert snapshot[name].attrs["voxel_size"] == [2, 2, 2], name
    raw_offset = np.array(snapshot["raw"].attrs["offset"])
    np.testing.assert_array_equal(np.array(snapshot["gt"].attrs["offset"]) - raw_offset, [4, 4, 4])


def test_gt_on_another_grid_than_the_model_predicts_is_refused(tmp_path: Path) -> None:
    dataset, _ = upsampled()
    config = SimpleTensorTrainerConfig(name="t", batch_size=1, learning_rate=1e-2)
    trainer = config.build_trainer()
    assert trainer.cannot_train_reason([dataset]) is None  # 2 nm gt under 4 nm raw: may be
    from dacapo_trainers.testing import ToyModel

    with pytest.raises(ValueError, match=r"gt voxel size \(2, 2, 2\) but the model predicts"):
        trainer.build_batch_provider([dataset], ToyModel(), SimpleTask(GtAsTarget()))
    odd = Dataset("odd", dataset.raw, InMemoryArray(np.ones((20,) * 3), (3, 3, 3), (0,) * 3))
    assert "finer by an integer factor" in trainer.cannot_train_reason([odd])


def test_raw_is_the_datasets_own_values(tmp_path: Path) -> None:
    raw = np.full((16, 16, 16), 200, dtype=np.uint8)
    dataset = make_dataset(tmp_path, "bright", raw, np.ones_like(raw))
    from dacapo_trainers.testing import ToyModel

    model = ToyModel()
    trainer, _ = _setup([dataset], model)
    list(trainer.iterate(1, model, trainer._optimizer, "cpu"))
    assert torch.equal(model.inputs[0], torch.full_like(model.inputs[0], 200.0))


def test_sample_points_centre_the_output_crop(tmp_path: Path) -> None:
    dataset, _ = upsampled()
    # world points; the output crop (16 voxels at 2 nm) moves in raw steps (4 nm), so a
    # point lands in its centre voxels 7 or 8, as the gunpowder trainer's centre box
    points = np.array([(40.0, 50.0, 44.0), (54.0, 41.0, 47.0)])
    dataset.sample_points = points.tolist()
    model = ToyUpsamplingModel()
    trainer, _ = _setup([dataset], model, flips=False, transposes=False)
    drawn = set()
    for seed in range(4):
        for plan in trainer._sampler.draw(torch.Generator().manual_seed(seed)):
            within = points // 2 - np.array(plan.origin)
            hits = np.flatnonzero(np.all((within >= 7) & (within <= 8), axis=1))
            assert len(hits) == 1
            drawn.add(int(hits[0]))
    assert drawn == {0, 1}


def test_a_sample_point_outside_the_dataset_is_refused() -> None:
    dataset, _ = upsampled()
    dataset.sample_points = [(10.0, 10.0, 10.0), (4e6, 0.0, 0.0)]
    config = SimpleTensorTrainerConfig(name="t", batch_size=1, learning_rate=1e-2)
    reason = config.build_trainer().cannot_train_reason([dataset])
    assert "dataset 'up': sample point (4000000.0, 0.0, 0.0) lies outside its gt" in reason
    assert "covers (0, 0, 0) to (96, 96, 96)" in reason
