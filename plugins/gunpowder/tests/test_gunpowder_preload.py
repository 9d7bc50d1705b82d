"""What is read into memory before the workers start: one budget, raw only where samples reach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gunpowder_helpers import TinyTask, tiny_model, write_volume

from dacapo_trainers import InMemoryArray, open_array, write_array
from dacapo_trainers_gunpowder import ElasticAugmentConfig, GunpowderTrainerConfig
from dacapo_trainers_gunpowder._preload import WindowedData, preload_datasets


def test_windowed_data_reads_inside_from_memory_and_outside_from_the_source() -> None:
    source = np.arange(2 * 10 * 10).reshape(2, 10, 10)
    data = WindowedData(source, source[:, 2:6, 3:8].copy(), (2, 3))
    data.window[...] += 1000  # tells which reads come from the window
    inside = (slice(None), slice(2, 6), slice(4, 8))
    assert np.array_equal(data[inside], source[inside] + 1000)
    for outside in (
        (slice(None), slice(1, 6), slice(4, 8)),
        (slice(None), slice(2, 7), slice(4, 8)),
        (slice(0, 1), slice(2, 6), slice(4, 8)),
        ...,
    ):
        assert np.array_equal(data[outside], source[outside])
    assert data.shape == source.shape and data.dtype == source.dtype and data.ndim == 3


def _crop(folder: Path, name: str) -> Any:
    return write_volume(folder, (16, 16, 16), name=name)


def test_one_budget_for_all_datasets_in_order(tmp_path: Path) -> None:
    # each crop: raw 4,096 bytes (uint8), gt 16,384 bytes (uint32)
    crops = [_crop(tmp_path, f"crop{i}") for i in range(3)]
    loaded = preload_datasets(crops, 2 * 20_480 + 4_096, input_size=(32, 32, 32))
    in_memory = [[isinstance(array.data, np.ndarray) for array in (d.raw, d.gt)] for d in loaded]
    assert in_memory == [[True, True], [True, True], [True, False]]
    assert [isinstance(d.raw.data, np.ndarray) for d in preload_datasets(crops, 0, (8,) * 3)] == [
        False
    ] * 3


def test_raw_is_read_only_where_samples_reach(tmp_path: Path) -> None:
    container = tmp_path / "cell.zarr"
    raw = np.random.default_rng(0).integers(0, 255, size=(64, 64, 64), dtype=np.uint8)
    write_array(container, "raw", raw, voxel_size=(4, 4, 4))
    gt = np.ones((8, 8, 8), dtype=np.uint32)
    write_array(container, "gt", gt, voxel_size=(4, 4, 4), offset=(80, 80, 80))
    dataset = write_volume(tmp_path, (8, 8, 8))
    dataset.raw, dataset.gt = open_array(container, "raw"), open_array(container, "gt")
    (loaded,) = preload_datasets([dataset], 2**30, input_size=(40, 40, 40))
    assert isinstance(loaded.raw, InMemoryArray) and isinstance(loaded.raw.data, WindowedData)
    # gt voxels 20..28 grown by 10 voxels on each side
    assert loaded.raw.data.begin == (10, 10, 10)
    assert loaded.raw.data.window.shape == (28, 28, 28)
    assert isinstance(loaded.gt.data, np.ndarray)


def test_batches_are_the_same_whatever_is_preloaded(tmp_path: Path) -> None:
    container = tmp_path / "cell.zarr"
    raw = np.random.default_rng(1).integers(0, 255, size=(48, 48, 48), dtype=np.uint8)
    write_array(container, "raw", raw, voxel_size=(4, 4, 4))
    gt = np.arange(12**3, dtype=np.uint32).reshape(12, 12, 12)
    write_array(container, "gt", gt, voxel_size=(4, 4, 4), offset=(72, 72, 72))
    dataset = write_volume(tmp_path, (8, 8, 8))
    dataset.raw, dataset.gt = open_array(container, "raw"), open_array(container, "gt")
    elastic = ElasticAugmentConfig(
        control_point_spacing=[8, 8, 8],
        control_point_displacement_sigma=[4.0, 4.0, 4.0],
        rotation_interval=(0.0, 1.5),
        subsample=2,
    )

    def batches(limit_mb: float) -> list[dict[str, np.ndarray]]:
        config = GunpowderTrainerConfig(
            name="t",
            batch_size=2,
            learning_rate=1e-3,
            num_data_fetchers=0,
            preload_limit_mb=limit_mb,
            augments=[elastic],
        )
        trainer = config.build_trainer()
        trainer.seed = 3
        model = tiny_model((12, 12, 12))
        trainer.create_optimizer(model)
        trainer.build_batch_provider([dataset], model, TinyTask())
        with trainer:
            producer = trainer._start_batches(0)
            out = []
            for index in range(4):
                batch = producer.get(index)
                out.append({k: v.copy() for k, v in batch.arrays.items()})
                batch.release()
        return out

    for preloaded, lazy in zip(batches(64), batches(0), strict=True):
        for name in preloaded:
            np.testing.assert_array_equal(preloaded[name], lazy[name])
