"""Geometry as DaCapo: upsampling models (gt finer than raw), gt with channels, padding, and
clear refusals of datasets DaCapo would silently mistrain on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from gunpowder_helpers import VOXEL_SIZE, TinyTask, tiny_model, write_volume

from dacapo_trainers import InMemoryArray, ZarrContainer
from dacapo_trainers.testing import ToyUpsamplingModel
from dacapo_trainers_gunpowder import (
    GammaAugmentConfig,
    GunpowderTrainerConfig,
    IntensityAugmentConfig,
    IntensityScaleShiftAugmentConfig,
    SimpleAugmentConfig,
)


class ChannelPredictor:
    """Target: gt's channels as float; weight: the mask (of gt's shape) as float."""

    def create_target(self, gt: Any) -> InMemoryArray:
        data = np.asarray(gt.data, dtype=np.float32)
        return InMemoryArray(data, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_weight(self, gt: Any, target: Any, mask: Any = None) -> InMemoryArray:
        data = np.broadcast_to(np.asarray(mask.data, dtype=np.float32), target.data.shape)
        return InMemoryArray(data.copy(), voxel_size=gt.voxel_size, offset=gt.offset)


class Dataset:
    def __init__(self, name: str, raw: Any, gt: Any, mask: Any = None, points: Any = None):
        self.name, self.raw, self.gt, self.mask = name, raw, gt, mask
        self.weight = 1.0
        self.sample_points = points


def upsampled_dataset(channels: bool) -> Dataset:
    """raw 24³ at 4 nm in [0, 1]; gt 48³ at 2 nm over the same world region (two binary
    channels, as DaCapo's BinarizeArrayConfig gives, or one label array)."""
    rng = np.random.default_rng(0)
    raw = InMemoryArray(
        rng.random((24, 24, 24), dtype=np.float32), voxel_size=VOXEL_SIZE, offset=(0, 0, 0)
    )
    index = np.indices((48, 48, 48))
    labels = (index[0] // 8 + index[2] // 8) % 2
    gt_data = np.stack([labels == 0, labels == 1]).astype(np.uint8) if channels else labels
    gt = InMemoryArray(gt_data.astype(np.uint8), voxel_size=(2, 2, 2), offset=(0, 0, 0))
    return Dataset("up", raw, gt)


def _build(config: GunpowderTrainerConfig, datasets: list[Any], model: Any, task: Any) -> Any:
    trainer = config.build_trainer()
    trainer.seed = 3
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider(datasets, model, task)
    return trainer, optimizer


def _first_batch(trainer: Any) -> dict[str, np.ndarray]:
    batches = trainer._start_batches(0)
    batch = batches.get(0)
    arrays = {name: array.copy() for name, array in batch.arrays.items()}
    batch.release()
    return arrays


@pytest.mark.parametrize("channels", [False, True])
def test_an_upsampling_model_trains_on_gt_finer_than_raw(channels: bool) -> None:
    dataset = upsampled_dataset(channels)
    model = ToyUpsamplingModel(num_out_channels=2 if channels else 1)
    task = TinyTask(predictor=ChannelPredictor()) if channels else TinyTask()
    config = GunpowderTrainerConfig(
        name="t",
        batch_size=2,
        learning_rate=1e-2,
        num_data_fetchers=0,
        augments=[SimpleAugmentConfig(augmentation_probability=0.0)],
    )
    trainer, optimizer = _build(config, [dataset], model, task)
    with trainer:
        batch = _first_batch(trainer)
        losses = [s.loss for s in trainer.iterate(3, model, optimizer, "cpu")]
    assert all(np.isfinite(losses))
    lead = (2,) if channels else ()
    assert batch["raw"].shape == (2, 1, 10, 10, 10)
    assert batch["gt"].shape == (2, *lead, 16, 16, 16)
    assert batch["mask"].shape == (2, *lead, 16, 16, 16)  # DaCapo's ones of gt's shape
    # the output crop (32 nm) is centred in the input (40 nm): 4 nm in, on the 2 nm grid
    gt = np.asarray(dataset.gt.data)
    for sample in range(2):
        begin = (batch["location"][sample] + 4) // 2
        window = (..., *(slice(b, b + 16) for b in begin))
        padded = np.zeros((*lead, 80, 80, 80), dtype=gt.dtype)
        padded[(..., *(slice(16, 64),) * 3)] = gt
        expected = padded[(..., *(slice(b + 16, b + 32) for b in begin))]
        np.testing.assert_array_equal(batch["gt"][sample], expected, err_msg=str(window))


@pytest.mark.parametrize("augment", [None, SimpleAugmentConfig()])
def test_upsampled_gt_stays_aligned_with_raw(augment: Any) -> None:
    # raw holds a label per 4 nm voxel, gt the same labels at 2 nm: gt voxel j of a sample
    # must equal raw voxel 1 + j // 2 (the output starts 4 nm into the input), mirrored
    # and transposed alike
    labels = np.random.default_rng(5).integers(0, 2, size=(24, 24, 24)).astype(np.uint8)
    raw = InMemoryArray(labels.astype(np.float32), voxel_size=VOXEL_SIZE, offset=(0, 0, 0))
    fine = np.kron(labels, np.ones((2, 2, 2), dtype=np.uint8))
    gt = InMemoryArray(fine, voxel_size=(2, 2, 2), offset=(0, 0, 0))
    config = GunpowderTrainerConfig(
        name="t",
        batch_size=4,
        learning_rate=1e-2,
        num_data_fetchers=0,
        augments=[augment] if augment is not None else [],
    )
    trainer, _ = _build(config, [Dataset("aligned", raw, gt)], ToyUpsamplingModel(), TinyTask())
    with trainer:
        batches = trainer._start_batches(0)
        for index in range(3):
            batch = batches.get(index)
            for sample in range(4):
                coarse = batch.arrays["raw"][sample, 0][1:9, 1:9, 1:9]
                expected = np.kron(coarse, np.ones((2, 2, 2), dtype=np.float32))
                np.testing.assert_array_equal(batch.arrays["gt"][sample], expected)
            batch.release()


def test_upsampled_snapshots_are_on_the_prediction_grid(tmp_path: Path) -> None:
    dataset = upsampled_dataset(False)
    model = ToyUpsamplingModel()
    config = GunpowderTrainerConfig(
        name="t", batch_size=1, learning_rate=1e-2, num_data_fetchers=0, snapshot_interval=1
    )
    trainer = config.build_trainer()
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, TinyTask(), ZarrContainer(tmp_path / "s.zarr"))
    with trainer:
        list(trainer.iterate(1, model, optimizer, "cpu"))
    snapshot = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")["0/volumes"]
    assert snapshot["raw"].attrs["voxel_size"] == [4, 4, 4]
    for name in ("gt", "target", "weight", "prediction", "gradients", "mask"):
        assert snapshot[name].attrs["voxel_size"] == [2, 2, 2], name
    # the output crop sits centred in the raw crop, in world units
    raw_offset = np.array(snapshot["raw"].attrs["offset"])
    gt_offset = np.array(snapshot["gt"].attrs["offset"])
    raw_end = raw_offset + np.array(snapshot["raw"].shape[-3:]) * 4
    gt_end = gt_offset + np.array(snapshot["gt"].shape[-3:]) * 2
    np.testing.assert_array_equal(gt_offset - raw_offset, raw_end - gt_end)


def test_dacapo_cosem_intensity_chain_keeps_raw_in_minus_one_one() -> None:
    # DaCapo's cosem augments on [0, 1] float raw: Intensity (clip) -> Gamma -> ScaleShift(2, -1)
    rng = np.random.default_rng(1)
    raw = InMemoryArray(
        rng.random((24, 24, 24), dtype=np.float32), voxel_size=VOXEL_SIZE, offset=(0, 0, 0)
    )
    labels = (np.indices((24, 24, 24))[0] // 6 % 2 + 1).astype(np.uint32)
    dataset = Dataset("cosem", raw, InMemoryArray(labels, voxel_size=VOXEL_SIZE, offset=(0,) * 3))
    augments = [
        IntensityAugmentConfig(scale=(0.25, 1.75), shift=(-0.5, 0.35), clip=True),
        GammaAugmentConfig(gamma_range=(0.5, 2.0)),
        IntensityScaleShiftAugmentConfig(scale=2.0, shift=-1.0),
    ]
    config = GunpowderTrainerConfig(
        name="t", batch_size=8, learning_rate=1e-3, num_data_fetchers=0, augments=augments
    )
    trainer, _ = _build(config, [dataset], tiny_model((12, 12, 12)), TinyTask())
    with trainer:
        batches = trainer._start_batches(0)
        values = []
        for index in range(6):
            batch = batches.get(index)
            values.append(batch.arrays["raw"].copy())
            batch.release()
    raw_values = np.concatenate([v.ravel() for v in values])
    assert raw_values.min() >= -1.0 and raw_values.max() <= 1.0
    assert raw_values.min() < -0.9 and raw_values.max() > 0.9  # the whole range is used


def test_padding_is_zero_in_the_datasets_own_raw_space() -> None:
    # uint8 raw of 200 everywhere; crops reaching past it read 0 there (DaCapo's gp.Pad)
    raw = InMemoryArray(
        np.full((16, 16, 16), 200, np.uint8), voxel_size=VOXEL_SIZE, offset=(0,) * 3
    )
    gt = InMemoryArray(np.ones((16, 16, 16), np.uint32), voxel_size=VOXEL_SIZE, offset=(0,) * 3)
    config = GunpowderTrainerConfig(name="t", batch_size=8, learning_rate=1e-3, num_data_fetchers=0)
    trainer, _ = _build(config, [Dataset("pad", raw, gt)], tiny_model((12, 12, 12)), TinyTask())
    with trainer:
        batch = _first_batch(trainer)
    assert set(np.unique(batch["raw"])) == {0.0, 200.0}


def test_intensity_augment_refuses_raw_outside_zero_one_with_the_fix(tmp_path: Path) -> None:
    dataset = write_volume(tmp_path, (24, 24, 24))  # uint8 raw, not normalized
    config = GunpowderTrainerConfig(
        name="t",
        batch_size=1,
        learning_rate=1e-3,
        num_data_fetchers=0,
        augments=[IntensityAugmentConfig(scale=(0.9, 1.1), shift=(0.0, 0.0))],
    )
    trainer, _ = _build(config, [dataset], tiny_model((8, 8, 8)), TinyTask())
    with trainer, pytest.raises(Exception, match=r"intensity_range"):
        _first_batch(trainer)


def _trainer() -> Any:
    return GunpowderTrainerConfig(name="t", batch_size=1, learning_rate=1e-3).build_trainer()


def test_gt_on_another_grid_than_the_model_predicts_is_refused() -> None:
    dataset = upsampled_dataset(False)
    trainer = _trainer()
    assert trainer.cannot_train_reason([dataset]) is None  # 2 nm gt, 4 nm raw: may upsample
    reason = trainer.cannot_train_reason([dataset], tiny_model((8, 8, 8)))
    assert "gt voxel size (2, 2, 2) but the model predicts at (4, 4, 4)" in reason
    same = write_volume_like(dataset, gt_voxel=(4, 4, 4))
    reason = trainer.cannot_train_reason([same], ToyUpsamplingModel())
    assert "(model.scale of the raw voxel size)" in reason
    odd = write_volume_like(dataset, gt_voxel=(3, 3, 3))
    assert "integer multiple" in trainer.cannot_train_reason([odd])


def write_volume_like(dataset: Dataset, gt_voxel: tuple[int, ...]) -> Dataset:
    gt = InMemoryArray(np.ones((20, 20, 20), np.uint8), voxel_size=gt_voxel, offset=(0, 0, 0))
    return Dataset(dataset.name, dataset.raw, gt)


def test_raw_that_does_not_overlap_the_gt_is_refused() -> None:
    raw = InMemoryArray(np.zeros((8, 8, 8), np.float32), voxel_size=(4, 4, 4), offset=(0,) * 3)
    gt = InMemoryArray(np.ones((8, 8, 8), np.uint8), voxel_size=(4, 4, 4), offset=(100, 0, 0))
    reason = _trainer().cannot_train_reason([Dataset("apart", raw, gt)])
    assert "raw (world (0, 0, 0) to (32, 32, 32)) does not overlap its gt" in reason
    with pytest.raises(ValueError, match="does not overlap"):
        _build(_trainer().trainer_config, [Dataset("apart", raw, gt)], tiny_model(), TinyTask())


def test_a_sample_point_outside_the_dataset_is_refused(tmp_path: Path) -> None:
    dataset = write_volume(tmp_path, (24, 24, 24))
    dataset.sample_points = [(10.0, 10.0, 10.0), (4e6, 0.0, 0.0)]
    reason = _trainer().cannot_train_reason([dataset])
    assert "dataset 'tiny': sample point (4000000.0, 0.0, 0.0)" in reason
    assert "covers (0, 0, 0) to (96, 96, 96)" in reason


def test_datasets_of_different_gt_channels_are_refused() -> None:
    one, two = upsampled_dataset(False), upsampled_dataset(True)
    reason = _trainer().cannot_train_reason([one, two])
    assert "gt channels (2,) but dataset 'up' has ()" in reason
