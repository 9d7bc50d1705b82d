from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

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


def encoded(origin: tuple[int, ...], shape: tuple[int, ...]) -> torch.Tensor:
    """A volume whose value at global voxel (z, y, x) is z * 10_000 + y * 100 + x."""
    axes = [torch.arange(o, o + s, dtype=torch.float64) for o, s in zip(origin, shape, strict=True)]
    grid = torch.meshgrid(*axes, indexing="ij")
    return (grid[0] * 10_000 + grid[1] * 100 + grid[2])[None]


@settings(max_examples=40, deadline=None)
@given(
    output=st.tuples(*[st.integers(1, 4)] * 3),
    context=st.tuples(*[st.integers(0, 3)] * 3),
    extra=st.tuples(*[st.integers(0, 3)] * 3),
    raw_origin=st.tuples(*[st.integers(-5, 5)] * 3),
    gt_shift=st.tuples(*[st.integers(0, 3)] * 3),
    seed=st.integers(0, 2**16),
)
def test_target_crop_is_the_centre_of_the_raw_crop(
    output: tuple[int, ...],
    context: tuple[int, ...],
    extra: tuple[int, ...],
    raw_origin: tuple[int, ...],
    gt_shift: tuple[int, ...],
    seed: int,
) -> None:
    input_shape = tuple(o + 2 * c for o, c in zip(output, context, strict=True))
    raw_shape = tuple(i + e + s for i, e, s in zip(input_shape, extra, gt_shift, strict=True))
    # gt starts gt_shift voxels into the raw and covers what the output crops can reach.
    gt_origin = tuple(r + s for r, s in zip(raw_origin, gt_shift, strict=True))
    gt_shape = tuple(r - s for r, s in zip(raw_shape, gt_shift, strict=True))
    training_volume = volume((1, 1, 1), (2, 2, 2))
    training_volume.raw = encoded(raw_origin, raw_shape)
    training_volume.raw_origin = raw_origin
    training_volume.target = encoded(gt_origin, gt_shape)
    training_volume.weight = training_volume.target
    training_volume.gt_origin = gt_origin
    training_volume.gt = np.zeros(gt_shape, dtype=np.uint8)
    training_volume.mask = np.zeros(gt_shape, dtype=np.uint8)
    try:
        sampler = BatchSampler(
            [training_volume], input_shape, output, 4, flips=True, transposes=True
        )
    except ValueError as error:
        assert "too small for the model" in str(error)
        return
    plans = sampler.draw(torch.Generator().manual_seed(seed))
    raw, target, _ = sampler.batch(plans)
    centre = (..., *(slice(c, c + o) for c, o in zip(context, output, strict=True)))
    assert torch.equal(raw[centre], target)
