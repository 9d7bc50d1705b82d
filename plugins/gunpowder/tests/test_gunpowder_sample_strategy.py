"""``sample_strategy``: DaCapo main's four strategies and DaCapo 0.3.5's rule (the default),
each drawing exactly the centres it allows."""

from __future__ import annotations

import numpy as np
import pytest

from dacapo_trainers import ConfigError, InMemoryArray, structure_config
from dacapo_trainers_gunpowder import GunpowderTrainerConfig
from dacapo_trainers_gunpowder._preload import LoadedDataset
from dacapo_trainers_gunpowder._samplers import location_sampler

SHAPE = (30, 30, 30)
BOX = np.full(3, 2, dtype=np.int64)  # a centre box of 2 voxels per axis
POINTS = [(3.0, 27.0, 12.0), (25.0, 2.0, 2.0)]  # both outside the mask


def dataset(points: list[tuple[float, ...]] | None = None) -> LoadedDataset:
    """A 30³ dataset (voxel size 1) masked in the block [10, 20)³."""
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[10:20, 10:20, 10:20] = 1
    return LoadedDataset(
        name="block",
        raw=InMemoryArray(np.zeros(SHAPE, np.float32), (1, 1, 1), (0, 0, 0)),
        gt=InMemoryArray(np.zeros(SHAPE, np.uint8), (1, 1, 1), (0, 0, 0)),
        mask=InMemoryArray(mask, (1, 1, 1), (0, 0, 0)),
        weight=1.0,
        sample_points=points,
    )


def drawn_shifts(strategy: str | None, points: list[tuple[float, ...]] | None = None) -> set:
    config = GunpowderTrainerConfig(name="gp", sample_strategy=strategy)
    sampler = location_sampler(dataset(points), config)
    rng = np.random.default_rng(0)
    zero, grid = np.zeros(3, dtype=np.int64), np.ones(3, dtype=np.int64)
    return {tuple(sampler.draw(rng, zero, BOX, grid, zero, BOX)) for _ in range(8000)}


def axis_range(shifts: set) -> tuple[int, int]:
    values = np.array(sorted(shifts))
    return int(values.min()), int(values.max())


def test_the_default_is_dacapo_0_3_5_some_centre_voxel_masked() -> None:
    shifts = drawn_shifts("dacapo-0.3.5")
    assert axis_range(shifts) == (9, 19)  # a box [s, s + 2) touching [10, 20)


@pytest.mark.parametrize("strategy", ["integral_mask", "reject"])
def test_integral_mask_and_reject_need_every_centre_voxel_masked(strategy: str) -> None:
    shifts = drawn_shifts(strategy)
    assert axis_range(shifts) == (10, 18)  # a box [s, s + 2) inside [10, 20)
    assert len(shifts) == 9**3  # and every such box is drawn


def test_null_draws_anywhere_in_the_masks_region() -> None:
    shifts = drawn_shifts(None)
    assert axis_range(shifts) == (0, 28)
    assert any(not all(10 <= s < 19 for s in shift) for shift in shifts)


def test_sample_points_centre_on_the_points_without_consulting_the_mask() -> None:
    shifts = drawn_shifts("sample_points", POINTS)
    assert len(shifts) == 2
    # DaCapo 0.3.5's rule refuses them: neither point's centre is masked
    with pytest.raises(ValueError, match="sample points has a masked centre"):
        drawn_shifts("dacapo-0.3.5", POINTS)


def test_main_strategies_other_than_sample_points_ignore_the_points() -> None:
    assert axis_range(drawn_shifts("integral_mask", POINTS)) == (10, 18)


def test_sample_points_without_points_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"\$\.trainer_config\.sample_strategy"):
        drawn_shifts("sample_points")


def test_a_file_without_the_key_gets_dacapo_0_3_5_and_null_is_main() -> None:
    data = {"__type__": "GunpowderTrainerConfig", "name": "gp"}
    assert structure_config(data).sample_strategy == "dacapo-0.3.5"
    assert structure_config({**data, "sample_strategy": None}).sample_strategy is None
    with pytest.raises(ConfigError, match=r"\$\.sample_strategy: must be one of"):
        structure_config({**data, "sample_strategy": "everywhere"})
