"""Sample locations: DaCapo 0.3.5's rules (masked centre voxel, mean gt above gt_min_reject)
met exactly, and the plugin's optional fraction rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gunpowder_helpers import VOXEL_SIZE, TinyTask, tiny_model, write_volume
from hypothesis import given, settings
from hypothesis import strategies as st

from dacapo_trainers import InMemoryArray
from dacapo_trainers_gunpowder import GunpowderTrainerConfig
from dacapo_trainers_gunpowder._locations import BoxCounter, LocationSampler, ValidShifts


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 1000),
    begin=st.tuples(*[st.integers(-12, 16)] * 3),
    size=st.tuples(*[st.integers(1, 10)] * 3),
    values=st.booleans(),
)
def test_box_means_match_brute_force(
    seed: int, begin: tuple[int, ...], size: tuple[int, ...], values: bool
) -> None:
    rng = np.random.default_rng(seed)
    data = (rng.random((2, 9, 7, 8)) < 0.4) * rng.integers(1, 9, size=(2, 9, 7, 8))
    offset = np.array([8, -4, 0])
    counter = BoxCounter.from_array(data, VOXEL_SIZE, offset, values=values)
    counted = data if values else (data != 0).any(axis=0)[np.newaxis]
    padded = np.zeros((counted.shape[0], 9 + 40, 7 + 40, 8 + 40))
    padded[:, 20:29, 20:27, 20:28] = counted
    lo = np.array(begin) + 20
    box = (slice(None), *(slice(a, a + s) for a, s in zip(lo, size, strict=True)))
    world_begin = offset + np.array(begin) * 4
    got = counter.means(world_begin[np.newaxis], np.array(size) * 4)[0]
    assert got == pytest.approx(padded[box].mean())


def test_valid_shifts_are_drawn_uniformly_and_only_where_valid() -> None:
    rng = np.random.default_rng(1)
    valid = rng.random((20, 37, 5)) < 0.02
    shifts = ValidShifts(valid)
    drawn = shifts.draw(np.random.default_rng(2), 20 * int(valid.sum()))
    assert valid[tuple(drawn.T)].all()
    counts = np.zeros(valid.shape, dtype=np.int64)
    np.add.at(counts, tuple(drawn.T), 1)
    # every valid position is drawn, about equally often (20 expected each)
    assert counts[valid].min() > 3 and counts[valid].max() < 45


def _sampler(mask: np.ndarray, **rules: Any) -> LocationSampler:
    return LocationSampler(
        name="d",
        voxel_size=np.ones(3, dtype=np.int64),
        region_begin=np.zeros(3, dtype=np.int64),
        region_end=np.array(mask.shape),
        mask=mask,
        **rules,
    )


@pytest.mark.parametrize("box", [1, 2])
def test_every_drawn_centre_box_holds_a_mask_voxel(box: int) -> None:
    mask = np.zeros((30, 30, 30), dtype=bool)
    mask[3, 4:27, 17] = True  # a thin line
    sampler = _sampler(mask)
    box_size, grid = np.full(3, box), np.ones(3, dtype=np.int64)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(1500):
        shift = sampler.draw(rng, np.zeros(3, np.int64), box_size, grid, np.zeros(3), box_size)
        window = tuple(slice(s, s + box) for s in shift)
        assert all(s >= 0 for s in shift) and mask[window].any()
        seen.add(tuple(shift))
    # every shift whose box touches the line is possible: 23 (box 1) or 2*24*2 (box 2)
    assert len(seen) == (23 if box == 1 else 96)


def test_requests_whose_centre_moves_share_the_precomputed_centres() -> None:
    mask = np.zeros((30, 30, 30), dtype=bool)
    mask[10:12, :, 5] = True
    sampler = _sampler(mask)
    ones = np.ones(3, dtype=np.int64)
    rng = np.random.default_rng(0)
    for begin in ([0, 0, 0], [3, -2, 7], [-5, 1, 1]):
        box_begin = np.array(begin)
        shift = sampler.draw(rng, box_begin, ones, ones, box_begin, ones)
        assert mask[tuple(box_begin + shift)]
    assert len(sampler._cache) == 1


def test_an_empty_mask_is_refused() -> None:
    sampler = _sampler(np.zeros((10, 10, 10), dtype=bool))
    ones = np.ones(3, dtype=np.int64)
    with pytest.raises(ValueError, match="no location has a masked output centre"):
        sampler.draw(np.random.default_rng(0), np.zeros(3, np.int64), ones, ones, ones, ones)


def _trainer(
    config: GunpowderTrainerConfig, dataset: object, model: object, task: object | None = None
) -> Any:
    trainer = config.build_trainer()
    trainer.seed = 0
    trainer.create_optimizer(model)  # type: ignore[arg-type]
    trainer.build_batch_provider([dataset], model, task or TinyTask())  # type: ignore[list-item]
    return trainer


def _batches(trainer: Any, count: int) -> list[dict[str, np.ndarray]]:
    batches = trainer._start_batches(0)
    out = []
    for index in range(count):
        batch = batches.get(index)
        out.append({name: array.copy() for name, array in batch.arrays.items()})
        batch.release()
    return out


def _config(**settings: Any) -> GunpowderTrainerConfig:
    return GunpowderTrainerConfig(
        name="t", batch_size=4, learning_rate=1e-3, num_data_fetchers=0, **settings
    )


@pytest.mark.parametrize(("input_size", "centre"), [(8, slice(2, 4)), (9, slice(3, 4))])
def test_a_thin_mask_trains_with_a_masked_centre_voxel(
    tmp_path: Path, input_size: int, centre: slice
) -> None:
    # a one-voxel line: far below the old default of 15% of the crop, but DaCapo trains on it
    line = (slice(12, 13), slice(12, 13), slice(2, 22))
    dataset = write_volume(tmp_path, (24, 24, 24), mask_box=line, offset=(40, 0, -8))
    model = tiny_model((input_size,) * 3)
    with _trainer(_config(min_masked=0.15), dataset, model) as trainer:
        batches = _batches(trainer, 5)
        stats = list(trainer.iterate(2, model, trainer._optimizer, "cpu"))
    assert all(np.isfinite(s.loss) for s in stats)
    mask = np.asarray(dataset.mask.data[...])
    for batch in batches:
        for sample in range(4):
            # the centre voxel (the central 2x2x2 for an even output) is masked ...
            assert batch["mask"][sample][(centre,) * 3].any()
            # ... the crop really is where the sampler says it is
            begin = (batch["location"][sample] + np.array([4, 4, 4]) - [40, 0, -8]) // 4
            crop = np.zeros((input_size - 2,) * 3, dtype=mask.dtype)
            for index in np.ndindex(crop.shape):
                voxel = begin + np.array(index)
                if np.all(voxel >= 0) and np.all(voxel < 24):
                    crop[index] = mask[tuple(voxel)]
            np.testing.assert_array_equal(batch["mask"][sample], crop)


def test_gt_min_reject_is_the_mean_gt_value_over_the_crop(tmp_path: Path) -> None:
    # gt labels 7 in a small box: the mean label over a 6³ crop must exceed 2.5
    gt_box = (slice(2, 8), slice(2, 8), slice(2, 8))
    dataset = write_volume(tmp_path, (24, 24, 24), gt_box=gt_box)
    with _trainer(_config(gt_min_reject=2.5), dataset, tiny_model((8, 8, 8))) as trainer:
        batches = _batches(trainer, 5)
    means = [batch["gt"][s].mean() for batch in batches for s in range(4)]
    assert min(means) > 2.5
    assert (np.array(means) < 7).any()  # not only crops full of foreground


def test_gt_min_reject_zero_needs_some_gt(tmp_path: Path) -> None:
    gt_box = (slice(2, 4), slice(2, 4), slice(2, 4))
    dataset = write_volume(tmp_path, (24, 24, 24), gt_box=gt_box)
    with _trainer(_config(gt_min_reject=0.0), dataset, tiny_model((8, 8, 8))) as trainer:
        batches = _batches(trainer, 3)
    assert all(batch["gt"][s].any() for batch in batches for s in range(4))


@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_min_masked_fraction_keeps_the_old_fraction_rule(tmp_path: Path, fraction: float) -> None:
    box = (slice(4, 14), slice(6, 16), slice(8, 18))
    dataset = write_volume(tmp_path, (24, 24, 24), mask_box=box)
    config = _config(min_masked_fraction=fraction)
    with _trainer(config, dataset, tiny_model((8, 8, 8))) as trainer:
        batches = _batches(trainer, 5)
    assert all(batch["mask"][s].mean() >= fraction for batch in batches for s in range(4))


def test_min_gt_fraction_counts_nonzero_gt(tmp_path: Path) -> None:
    gt_box = (slice(2, 8), slice(2, 8), slice(2, 8))
    dataset = write_volume(tmp_path, (24, 24, 24), gt_box=gt_box)
    with _trainer(_config(min_gt_fraction=0.3), dataset, tiny_model((8, 8, 8))) as trainer:
        batches = _batches(trainer, 5)
    assert all((batch["gt"][s] > 0).mean() >= 0.3 for batch in batches for s in range(4))


def test_impossible_rules_are_refused_when_building(tmp_path: Path) -> None:
    box = (slice(4, 6), slice(4, 6), slice(4, 6))
    dataset = write_volume(tmp_path, (24, 24, 24), mask_box=box)
    with pytest.raises(ValueError, match=r"min_masked_fraction=0.9"):
        _trainer(_config(min_masked_fraction=0.9), dataset, tiny_model((8, 8, 8)))
    with pytest.raises(ValueError, match=r"gt_min_reject=1000"):
        _trainer(_config(gt_min_reject=1000.0), dataset, tiny_model((8, 8, 8)))
    empty = write_volume(tmp_path, (24, 24, 24), mask_box=(slice(0, 0),) * 3, name="empty")
    with pytest.raises(ValueError, match="no location has a masked output centre"):
        _trainer(_config(), empty, tiny_model((8, 8, 8)))


def test_sample_points_centre_crops_and_skip_unmasked_points(tmp_path: Path) -> None:
    box = (slice(0, 24), slice(0, 12), slice(0, 24))
    dataset = write_volume(tmp_path, (24, 24, 24), mask_box=box)
    # world points (voxel size 4): the second one is outside the mask, never drawn
    dataset.sample_points = [(40.0, 20.0, 60.0), (40.0, 80.0, 40.0), (48.0, 8.0, 48.0)]
    with _trainer(_config(), dataset, tiny_model((9, 9, 9))) as trainer:
        batches = _batches(trainer, 4)
    centres = set()
    for batch in batches:
        for sample in range(4):
            # output 7³ at offset 4 of input 9³: its centre voxel is world shift + 16 + 4*3
            centres.add(tuple(batch["location"][sample] + 16))
    assert centres == {(40, 20, 60), (48, 8, 48)}


def test_sample_points_with_no_masked_centre_are_refused(tmp_path: Path) -> None:
    dataset = write_volume(tmp_path, (24, 24, 24), mask_box=(slice(0, 4),) * 3)
    dataset.sample_points = [(80.0, 80.0, 80.0)]
    with pytest.raises(ValueError, match="none of its 1 sample points has a masked centre"):
        _trainer(_config(), dataset, tiny_model((8, 8, 8)))


def test_clip_raw_zeroes_raw_outside_gt(tmp_path: Path) -> None:
    dataset = write_volume(tmp_path, (24, 24, 24))
    gt = np.asarray(dataset.gt.data[...])[4:20, 4:20, 4:20]
    dataset.gt = InMemoryArray(gt, voxel_size=VOXEL_SIZE, offset=(16, 16, 16))
    config = GunpowderTrainerConfig(
        name="t", batch_size=2, learning_rate=1e-3, num_data_fetchers=0, clip_raw=True
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
            np.testing.assert_array_equal(batch["raw"][sample, 0], expected)


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
