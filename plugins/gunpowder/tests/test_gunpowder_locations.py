"""Sample locations: integral-image counts, min_masked and gt_min_reject honoured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gunpowder_helpers import VOXEL_SIZE, TinyTask, tiny_model, write_volume
from hypothesis import given, settings
from hypothesis import strategies as st

from dacapo_trainers_gunpowder import GunpowderTrainerConfig
from dacapo_trainers_gunpowder._locations import BoxCounter, BoxOnes, LocationSampler


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 1000),
    begin=st.tuples(*[st.integers(-12, 16)] * 3),
    size=st.tuples(*[st.integers(1, 10)] * 3),
)
def test_box_counts_match_brute_force(
    seed: int, begin: tuple[int, ...], size: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((9, 7, 8)) < 0.4
    offset = np.array([8, -4, 0])
    counter = BoxCounter.from_array(mask, VOXEL_SIZE, offset)
    world_begin = offset + np.array(begin) * 4
    world_size = np.array(size) * 4
    padded = np.zeros((9 + 40, 7 + 40, 8 + 40), dtype=bool)
    padded[20:29, 20:27, 20:28] = mask
    lo = np.array(begin) + 20
    expected = padded[tuple(slice(a, a + s) for a, s in zip(lo, size, strict=True))].mean()
    got = counter.fractions(world_begin[np.newaxis], world_size)[0]
    assert got == pytest.approx(expected)


def test_implicit_ones_count_the_overlap() -> None:
    ones = BoxOnes(np.array([0, 0, 0]), np.array([40, 40, 40]))
    got = ones.fractions(np.array([[20, 0, 0], [-40, 0, 0]]), np.array([40, 40, 40]))
    np.testing.assert_allclose(got, [0.5, 0.0])


def test_sampler_draws_only_qualifying_crops() -> None:
    mask = np.zeros((40, 40, 40), dtype=bool)
    mask[25:35, 5:15, 10:40] = True
    counter = BoxCounter.from_array(mask, (1, 1, 1), (0, 0, 0))
    sampler = LocationSampler(
        name="d",
        region_begin=np.zeros(3, dtype=np.int64),
        region_end=np.full(3, 40),
        mask=counter,
        min_masked=0.6,
    )
    rng = np.random.default_rng(0)
    size = np.array([8, 8, 8])
    for _ in range(50):
        shift = sampler.draw(rng, np.zeros(3, dtype=np.int64), size, np.ones(3, dtype=np.int64))
        crop = mask[tuple(slice(s, s + 8) for s in shift)]
        assert crop.mean() >= 0.6


def _trainer(
    config: GunpowderTrainerConfig, dataset: object, model: object, task: object | None = None
) -> object:
    trainer = config.build_trainer()
    trainer.seed = 0
    trainer.create_optimizer(model)  # type: ignore[arg-type]
    trainer.build_batch_provider([dataset], model, task or TinyTask())  # type: ignore[list-item]
    return trainer


def _batches(trainer: object, count: int) -> list[dict[str, np.ndarray]]:
    batches = trainer._start_batches(0)  # type: ignore[attr-defined]
    out = []
    for index in range(count):
        batch = batches.get(index)
        out.append({name: array.copy() for name, array in batch.arrays.items()})
        batch.release()
    return out


@pytest.mark.parametrize("min_masked", [0.5, 1.0])
def test_crops_meet_min_masked_inside_a_small_mask(tmp_path: Path, min_masked: float) -> None:
    box = (slice(4, 14), slice(6, 16), slice(8, 18))
    dataset = write_volume(tmp_path, (24, 24, 24), mask_box=box, offset=(40, 0, -8))
    config = GunpowderTrainerConfig(
        name="t", batch_size=4, learning_rate=1e-3, num_data_fetchers=0, min_masked=min_masked
    )
    with _trainer(config, dataset, tiny_model((8, 8, 8))) as trainer:
        batches = _batches(trainer, 5)
    mask = np.asarray(dataset.mask.data[...])
    for batch in batches:
        for sample in range(4):
            fraction = batch["mask"][sample].mean()
            assert fraction >= min_masked
            # the crop really is where the sampler says it is
            begin = (batch["location"][sample] + np.array([4, 4, 4]) - [40, 0, -8]) // 4
            crop = mask[tuple(slice(b, b + 6) for b in begin)]
            np.testing.assert_array_equal(batch["mask"][sample], crop)


def test_gt_min_reject_keeps_crops_with_enough_foreground(tmp_path: Path) -> None:
    gt_box = (slice(2, 8), slice(2, 8), slice(2, 8))
    dataset = write_volume(tmp_path, (24, 24, 24), gt_box=gt_box)
    config = GunpowderTrainerConfig(
        name="t", batch_size=4, learning_rate=1e-3, num_data_fetchers=0, gt_min_reject=0.3
    )
    with _trainer(config, dataset, tiny_model((8, 8, 8))) as trainer:
        batches = _batches(trainer, 5)
    for batch in batches:
        assert all((batch["gt"][s] > 0).mean() >= 0.3 for s in range(4))


def test_an_impossible_min_masked_is_refused_when_building(tmp_path: Path) -> None:
    box = (slice(4, 6), slice(4, 6), slice(4, 6))
    dataset = write_volume(tmp_path, (24, 24, 24), mask_box=box)
    config = GunpowderTrainerConfig(
        name="t", batch_size=1, learning_rate=1e-3, num_data_fetchers=0, min_masked=0.9
    )
    with pytest.raises(ValueError, match=r"min_masked=0.9"):
        _trainer(config, dataset, tiny_model((8, 8, 8)))


def test_clip_raw_zeroes_raw_outside_gt(tmp_path: Path) -> None:
    dataset = write_volume(tmp_path, (24, 24, 24))
    from dacapo_trainers import InMemoryArray

    gt = np.asarray(dataset.gt.data[...])[4:20, 4:20, 4:20]
    dataset.gt = InMemoryArray(gt, voxel_size=VOXEL_SIZE, offset=(16, 16, 16))
    config = GunpowderTrainerConfig(
        name="t",
        batch_size=2,
        learning_rate=1e-3,
        num_data_fetchers=0,
        clip_raw=True,
        min_masked=0.0,
    )
    with _trainer(config, dataset, tiny_model((12, 12, 12))) as trainer:
        batches = _batches(trainer, 6)
    raw = np.asarray(dataset.raw.data[...])
    for batch in batches:
        for sample in range(2):
            begin = batch["location"][sample] // 4
            expected = np.zeros((12, 12, 12), dtype=np.float32)
            for index in np.ndindex(12, 12, 12):
                world = begin + np.array(index)
                if np.all(world >= 4) and np.all(world < 20):
                    expected[index] = raw[tuple(world)]  # as the dataset gives it
            np.testing.assert_allclose(batch["raw"][sample, 0], expected, atol=1e-6)


def test_datasets_are_drawn_by_weight(tmp_path: Path) -> None:
    heavy = write_volume(tmp_path, (16, 16, 16), name="heavy", offset=(0, 0, 0))
    light = write_volume(tmp_path, (16, 16, 16), name="light", offset=(10_000, 0, 0))
    heavy.weight, light.weight = 3.0, 1.0
    config = GunpowderTrainerConfig(name="t", batch_size=8, learning_rate=1e-3, num_data_fetchers=0)
    model = tiny_model((8, 8, 8))
    trainer = config.build_trainer()
    trainer.seed = 0
    trainer.create_optimizer(model)
    trainer.build_batch_provider([heavy, light], model, TinyTask())  # type: ignore[list-item]
    with trainer:
        batches = _batches(trainer, 10)
    from_light = np.mean([b["location"][s][0] >= 5_000 for b in batches for s in range(8)])
    assert 0.1 < from_light < 0.4
    torch.manual_seed(0)
