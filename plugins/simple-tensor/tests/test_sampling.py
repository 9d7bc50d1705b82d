from __future__ import annotations

import numpy as np
import torch
from dacapo_trainers_simple_tensor._sampling import BatchSampler, SamplePlan, augment
from dacapo_trainers_simple_tensor._volumes import TrainingVolume


def volume(shape: tuple[int, ...], voxel_size: tuple[int, ...]) -> TrainingVolume:
    data = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(1, *shape)
    return TrainingVolume(
        name="v",
        sampling_weight=1.0,
        voxel_size=voxel_size,
        axis_names=("z", "y", "x")[-len(shape) :],
        raw=data,
        raw_origin=(0,) * len(shape),
        target=data.clone(),
        weight=torch.ones_like(data),
        gt=np.zeros(shape, dtype=np.uint64),
        mask=np.ones(shape, dtype=np.uint8),
        gt_origin=(0,) * len(shape),
        sample_points=None,
    )


def test_augment_matches_numpy_flip_then_transpose() -> None:
    data = torch.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    plan = SamplePlan(volume=0, origin=(0, 0, 0), flips=(True, False, True), permutation=(0, 2, 1))
    expected = np.transpose(np.flip(data.numpy(), (1, 3)), (0, 1, 3, 2))
    assert np.array_equal(augment(data, plan).numpy(), expected)


def test_draws_cover_flips_and_transposes_of_equal_axes_only() -> None:
    sampler = BatchSampler(
        [volume((10, 12, 12), (8, 4, 4))], (6, 8, 8), (4, 4, 4), 64, flips=True, transposes=True
    )
    plans = sampler.draw(torch.Generator().manual_seed(0))
    assert {p.permutation for p in plans} == {(0, 1, 2), (0, 2, 1)}  # z has another voxel size
    assert {p.flips for p in plans} == {
        (a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)
    }
    for plan in plans:
        assert all(0 + 1 <= o <= 10 - 4 - 1 for o in plan.origin[:1])  # context 1 on z


def test_no_flips_where_context_is_odd() -> None:
    sampler = BatchSampler(
        [volume((12, 12), (4, 4))], (7, 8), (4, 4), 32, flips=True, transposes=True
    )
    plans = sampler.draw(torch.Generator().manual_seed(1))
    assert not any(p.flips[0] for p in plans) and any(p.flips[1] for p in plans)
    assert {p.permutation for p in plans} == {(0, 1)}


def test_crop_origins_cover_the_valid_range() -> None:
    sampler = BatchSampler(
        [volume((9, 9), (1, 1))], (5, 5), (3, 3), 256, flips=False, transposes=False
    )
    plans = sampler.draw(torch.Generator().manual_seed(2))
    origins = {p.origin for p in plans}
    assert origins == {(z, y) for z in range(1, 6) for y in range(1, 6)}


def test_host_batch_converts_wide_unsigned_labels() -> None:
    sampler = BatchSampler([volume((8, 8), (1, 1))], (4, 4), (2, 2), 2, flips=True, transposes=True)
    plans = sampler.draw(torch.Generator().manual_seed(3))
    gt, mask = sampler.host_batch(plans)
    assert gt.dtype == torch.int64 and gt.shape == (2, 2, 2)
    assert mask.dtype == torch.uint8
