"""The affinities task: exact targets and weights on hand-made labels, loss and head."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dacapo_trainers import InMemoryArray, Loss, Predictor, Task
from dacapo_trainers.reference import AffinitiesTaskConfig, UNetConfig

LABELS_2D = np.array(
    [
        [1, 1, 2],
        [1, 0, 2],
        [3, 3, 2],
    ],
    dtype=np.uint64,
)


def _gt(labels: np.ndarray, voxel_size: tuple[int, ...] | None = None) -> InMemoryArray:
    voxel_size = voxel_size or (4,) * labels.ndim
    return InMemoryArray(labels, voxel_size=voxel_size, offset=(8,) * labels.ndim)


def _task(  # type: ignore[no-untyped-def]
    neighborhood: list[list[int]], balance: bool = True, mask_neighbours: bool = False
):
    return AffinitiesTaskConfig(
        name="affs",
        neighborhood=neighborhood,
        balance_weights=balance,
        mask_neighbours=mask_neighbours,
    ).build()


def test_built_task_satisfies_the_protocols() -> None:
    task = AffinitiesTaskConfig(name="affs").build()
    assert isinstance(task, Task)
    assert isinstance(task.predictor, Predictor)
    assert isinstance(task.loss, Loss)


def test_target_on_hand_made_labels() -> None:
    task = _task([[1, 0], [0, 1]])
    gt = _gt(LABELS_2D, voxel_size=(4, 6))
    target = task.predictor.create_target(gt)
    expected = np.array(
        [
            # offset (1, 0): each voxel with the one below it
            [[1, 0, 1], [0, 0, 1], [0, 0, 0]],
            # offset (0, 1): each voxel with the one to its right
            [[1, 0, 0], [0, 0, 0], [1, 0, 0]],
        ],
        dtype=np.float32,
    )
    assert target.data.dtype == np.float32
    np.testing.assert_array_equal(target.data, expected)
    assert target.voxel_size == (4, 6)
    assert target.offset == (8, 8)
    assert target.axis_names == ("c^", "y", "x")


def test_float_gt_with_whole_numbers_is_labels_and_fractional_gt_is_refused() -> None:
    task = _task([[1, 0], [0, 1]])
    whole = task.predictor.create_target(_gt(LABELS_2D.astype(np.float32), voxel_size=(4, 6)))
    expected = task.predictor.create_target(_gt(LABELS_2D, voxel_size=(4, 6)))
    np.testing.assert_array_equal(whole.data, expected.data)
    fractional = LABELS_2D.astype(np.float32)
    fractional[0, 0] = 0.5
    with pytest.raises(ValueError, match=r"not whole numbers \(e\.g\. 0\.5\), but the affinities"):
        task.predictor.create_target(_gt(fractional, voxel_size=(4, 6)))


def test_unbalanced_weight_is_zero_where_the_neighbour_is_outside() -> None:
    task = _task([[1, 0], [0, 1]], balance=False)
    gt = _gt(LABELS_2D)
    weight = task.predictor.create_weight(gt, task.predictor.create_target(gt))
    expected = np.array(
        [
            [[1, 1, 1], [1, 1, 1], [0, 0, 0]],
            [[1, 1, 0], [1, 1, 0], [1, 1, 0]],
        ],
        dtype=np.float32,
    )
    assert weight.data.dtype == np.float32
    np.testing.assert_array_equal(weight.data, expected)


def test_balanced_weight_on_hand_made_labels() -> None:
    task = _task([[1, 0], [0, 1]])
    gt = _gt(LABELS_2D)
    weight = task.predictor.create_weight(gt, task.predictor.create_target(gt))
    # Channel 0: 3 positives, 3 negatives among 6 known voxels: all weight 1.
    # Channel 1: 2 positives (weight 6 / (2 * 2)), 4 negatives (weight 6 / (2 * 4)).
    expected = np.array(
        [
            [[1, 1, 1], [1, 1, 1], [0, 0, 0]],
            [[1.5, 0.75, 0], [0.75, 0.75, 0], [1.5, 0.75, 0]],
        ],
        dtype=np.float32,
    )
    np.testing.assert_allclose(weight.data, expected)


def test_negative_offsets_look_backwards() -> None:
    task = _task([[-1, 0], [0, -2]], balance=False)
    gt = _gt(LABELS_2D)
    target = task.predictor.create_target(gt)
    weight = task.predictor.create_weight(gt, target)
    np.testing.assert_array_equal(target.data[0], [[0, 0, 0], [1, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(target.data[1], [[0, 0, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(weight.data[0], [[0, 0, 0], [1, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(weight.data[1], [[0, 0, 1], [0, 0, 1], [0, 0, 1]])


def test_3d_default_neighborhood() -> None:
    labels = np.zeros((2, 2, 2), dtype=np.uint64)
    labels[0] = 5
    labels[1, 0, 0] = 5
    labels[1, 1, 1] = 7
    task = AffinitiesTaskConfig(name="affs").build()
    target = task.predictor.create_target(_gt(labels)).data
    assert target.shape == (3, 2, 2, 2)
    # z: the whole z=0 plane is 5, and z=1 has 5 only at (0, 0).
    np.testing.assert_array_equal(target[0, 0], [[1, 0], [0, 0]])
    np.testing.assert_array_equal(target[0, 1], 0)
    # y and x within the z=0 plane: all 5.
    np.testing.assert_array_equal(target[1, 0], [[1, 1], [0, 0]])
    np.testing.assert_array_equal(target[2, 0], [[1, 0], [1, 0]])
    # z=1: 5 at (0, 0) has background neighbours; 7 has none inside.
    np.testing.assert_array_equal(target[1:, 1], 0)


def _centre_masked_out() -> InMemoryArray:
    mask_data = np.ones((3, 3), dtype=np.uint8)
    mask_data[1, 1] = 0
    return InMemoryArray(mask_data, voxel_size=(4, 4), offset=(8, 8))


def test_mask_zeroes_the_weight_of_masked_out_voxels_only_as_dacapo() -> None:
    task = _task([[1, 0], [0, 1]], balance=False)
    gt = _gt(LABELS_2D)
    weight = task.predictor.create_weight(
        gt, task.predictor.create_target(gt), _centre_masked_out()
    ).data
    # (0, 1) looks at the masked-out centre below it and keeps its weight
    np.testing.assert_array_equal(weight[0], [[1, 1, 1], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(weight[1], [[1, 1, 0], [1, 0, 0], [1, 1, 0]])


def test_mask_neighbours_also_zeroes_affinities_into_the_mask() -> None:
    task = _task([[1, 0], [0, 1]], balance=False, mask_neighbours=True)
    gt = _gt(LABELS_2D)
    weight = task.predictor.create_weight(
        gt, task.predictor.create_target(gt), _centre_masked_out()
    ).data
    np.testing.assert_array_equal(weight[0], [[1, 0, 1], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(weight[1], [[1, 1, 0], [0, 0, 0], [1, 1, 0]])


def test_mask_with_a_channel_axis_and_wrong_shape() -> None:
    task = _task([[1, 0], [0, 1]], balance=False)
    gt = _gt(LABELS_2D)
    target = task.predictor.create_target(gt)
    mask = InMemoryArray(np.ones((1, 3, 3), np.uint8), voxel_size=(4, 4), offset=(8, 8))
    assert task.predictor.create_weight(gt, target, mask).data.shape == (2, 3, 3)
    wrong = InMemoryArray(np.ones((2, 2), np.uint8), voxel_size=(4, 4), offset=(8, 8))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 2\), but gt has shape \(3, 3\)"):
        task.predictor.create_weight(gt, target, wrong)


def test_when_a_class_is_absent_the_other_gets_weight_one() -> None:
    task = _task([[1, 0], [0, 1]])
    for value in (0, 4):  # all negative (background), all positive (one label)
        gt = _gt(np.full((3, 4), value, dtype=np.uint64))
        weight = task.predictor.create_weight(gt, task.predictor.create_target(gt)).data
        np.testing.assert_array_equal(weight[0], [[1] * 4, [1] * 4, [0] * 4])
        np.testing.assert_array_equal(weight[1], [[1, 1, 1, 0]] * 3)


def test_offsets_must_match_the_gt_dimensions() -> None:
    task = AffinitiesTaskConfig(name="affs").build()  # 3D offsets
    with pytest.raises(ValueError, match="3-entry offsets, but gt has 2 spatial axes"):
        task.predictor.create_target(_gt(LABELS_2D))


@pytest.mark.parametrize(
    ("neighborhood", "match"),
    [
        ([], "at least one offset"),
        ([[1, 0], [0, 0, 1]], "all have 2 or all have 3"),
        ([[1]], "all have 2 or all have 3"),
        ([[0, 0]], "must not be zero"),
    ],
)
def test_invalid_neighborhoods_are_refused(neighborhood: list[list[int]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AffinitiesTaskConfig(name="affs", neighborhood=neighborhood)


def _naive_affinities(
    labels: np.ndarray, neighborhood: list[list[int]], mask: np.ndarray, mask_neighbours: bool
) -> tuple[np.ndarray, np.ndarray]:
    target = np.zeros((len(neighborhood), *labels.shape), np.float32)
    known = np.zeros((len(neighborhood), *labels.shape), bool)
    for c, offset in enumerate(neighborhood):
        for p in itertools.product(*(range(s) for s in labels.shape)):
            q = tuple(a + o for a, o in zip(p, offset, strict=True))
            if all(0 <= a < s for a, s in zip(q, labels.shape, strict=True)):
                target[(c, *p)] = labels[p] != 0 and labels[p] == labels[q]
                known[(c, *p)] = mask[p] and (mask[q] or not mask_neighbours)
    return target, known


@settings(max_examples=30, deadline=None)
@given(
    labels=hnp.arrays(
        np.uint64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
        elements=st.integers(0, 2),
    ),
    neighborhood=st.lists(
        st.tuples(st.integers(-2, 2), st.integers(-2, 2)).filter(any), min_size=1, max_size=3
    ),
    mask_neighbours=st.booleans(),
    data=st.data(),
)
def test_matches_a_per_voxel_reference(
    labels: np.ndarray,
    neighborhood: list[tuple[int, int]],
    mask_neighbours: bool,
    data: st.DataObject,
) -> None:
    mask = data.draw(hnp.arrays(bool, labels.shape))
    offsets = [list(o) for o in neighborhood]
    task = _task(offsets, mask_neighbours=mask_neighbours)
    gt = _gt(labels)
    mask_array = InMemoryArray(mask.astype(np.uint8), voxel_size=(4, 4), offset=(8, 8))
    target = task.predictor.create_target(gt)
    weight = task.predictor.create_weight(gt, target, mask_array).data
    expected_target, known = _naive_affinities(labels, offsets, mask, mask_neighbours)
    np.testing.assert_array_equal(target.data, expected_target)
    assert np.all((weight > 0) == known)
    for c in range(len(offsets)):
        positive = (expected_target[c] > 0) & known[c]
        negative = (expected_target[c] == 0) & known[c]
        if positive.any() and negative.any():
            # Each class weighs 0.5 / its fraction of the known voxels, the fraction clipped to
            # [affs_weight_clipmin, affs_weight_clipmax] = [0.05, 0.95] (DaCapo's defaults) ...
            for members in (positive, negative):
                fraction = np.clip(members.sum() / known[c].sum(), 0.05, 0.95)
                np.testing.assert_allclose(weight[c][members], 0.5 / fraction, rtol=1e-6)
                # ... so it carries half of the channel's weight unless it is rarer than 5%.
                if 0.05 <= members.sum() / known[c].sum() <= 0.95:
                    assert weight[c][members].sum() == pytest.approx(known[c].sum() / 2)
        else:
            np.testing.assert_array_equal(weight[c][known[c]], 1)


def test_loss_is_dacapos_binary_cross_entropy_on_logits() -> None:
    loss = AffinitiesTaskConfig(name="affs", neighborhood=[[0, 1]]).build().loss
    logits = torch.tensor([[[[2.0, -1.0, 0.5, 3.0]]]])
    target = torch.tensor([[[[1.0, 0.0, 1.0, 1.0]]]])
    weight = torch.tensor([[[[5.0, 0.0, 2.0, 0.0]]]])
    # The last voxel's neighbour lies outside the crop: its affinity is not known there.
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[..., :3], target[..., :3]
    )
    value = loss.compute(logits, target, weight)
    assert value.dim() == 0
    assert value.item() == pytest.approx(expected.item())
    # DaCapo without lsds does not apply the weight
    assert loss.compute(logits, target).item() == pytest.approx(expected.item())
    assert loss.compute(torch.zeros(2, 1, 3, 4), target.expand(2, 1, 3, 4)).item() == (
        pytest.approx(math.log(2))
    )


def test_weighted_mse_is_the_weighted_squared_error() -> None:
    loss = AffinitiesTaskConfig(name="affs", weighted_mse=True).build().loss
    target = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    weight = torch.tensor([[[1.0, 2.0, 0.0, 1.0]]])
    prediction = torch.tensor([[[0.5, 0.5, 0.0, 0.0]]])
    value = loss.compute(prediction, target, weight)
    assert value.dim() == 0
    assert value.item() == pytest.approx((0.25 + 2 * 0.25 + 0 + 0) / 4)
    assert loss.compute(prediction, target).item() == pytest.approx((0.25 + 0.25 + 1) / 4)


@pytest.mark.parametrize("weighted_mse", [False, True])
def test_loss_decreases_towards_the_target(weighted_mse: bool) -> None:
    loss = AffinitiesTaskConfig(name="affs", weighted_mse=weighted_mse).build().loss
    generator = torch.Generator().manual_seed(0)
    target = (torch.rand(2, 3, 4, 4, 4, generator=generator) > 0.5).float()
    weight = torch.rand(2, 3, 4, 4, 4, generator=generator) + 0.1
    noise = torch.rand(2, 3, 4, 4, 4, generator=generator)
    # towards the target: probabilities for the squared error, growing logits for BCE
    if weighted_mse:
        predictions = [target + t * (noise - target) for t in (1.0, 0.5, 0.25, 0.0)]
    else:
        predictions = [(2 * target - 1) * scale for scale in (0.0, 1.0, 3.0, 30.0)]
    values = [loss.compute(p, target, weight).item() for p in predictions]
    assert values[0] > values[1] > values[2] > values[3] >= 0
    assert values[-1] == pytest.approx(0.0, abs=1e-9)


def _architecture() -> torch.nn.Module:
    return UNetConfig(  # type: ignore[no-any-return]
        name="unet",
        input_shape=[20, 20],
        downsample_factors=[[2, 2]],
        num_fmaps=2,
        num_fmaps_out=3,
    ).build()


def test_model_adds_a_logits_head_as_dacapo() -> None:
    task = AffinitiesTaskConfig(name="affs", neighborhood=[[1, 0], [0, 1]]).build()
    architecture = _architecture()
    model = task.create_model(architecture)
    assert tuple(model.input_shape) == tuple(architecture.input_shape)
    assert tuple(model.output_shape) == tuple(architecture.output_shape)
    assert tuple(model.eval_input_shape) == (20, 20)
    assert model.num_in_channels == 1
    assert model.num_out_channels == 2
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = model(10 * torch.randn(2, 1, 20, 20, generator=generator))
    assert out.shape == (2, 2, *architecture.output_shape)
    assert not torch.all((out > 0) & (out < 1))  # logits, not probabilities
    assert any(p is model.architecture.bottom[0].weight for p in model.parameters())


def test_weighted_mse_adds_a_sigmoid_head() -> None:
    config = AffinitiesTaskConfig(name="affs", neighborhood=[[1, 0], [0, 1]], weighted_mse=True)
    model = config.build().create_model(_architecture())
    with torch.no_grad():
        out = model(10 * torch.randn(2, 1, 20, 20))
    assert torch.all((out >= 0) & (out <= 1))


def test_logits_in_training_and_probabilities_in_eval_mode_as_dacapos_model() -> None:
    """DaCapo's affinities model trains logits and predicts with a sigmoid (eval_activation)."""
    torch.manual_seed(0)
    task = AffinitiesTaskConfig(name="affs").build()
    architecture = UNetConfig(
        name="u", input_shape=[20, 20, 20], num_fmaps=2, downsample_factors=[[2, 2, 2]]
    ).build()
    model = task.predictor.create_model(architecture)
    raw = torch.randn(1, 1, 20, 20, 20)
    logits = model.train()(raw)
    with torch.no_grad():
        probabilities = model.eval()(raw)
    assert logits.min() < 0 or logits.max() > 1  # not squashed while training
    torch.testing.assert_close(probabilities, torch.sigmoid(logits.detach()))
