"""The one-hot task: DaCapo's one-hot target, ones weight and L1 loss by default; class
indices, mask weight and a masked cross-entropy with ``masked_cross_entropy``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dacapo_trainers import InMemoryArray, Task
from dacapo_trainers.reference import OneHotTaskConfig, UNetConfig

CLASSES = ["background", "membrane", "mito"]


def _task(masked_cross_entropy: bool = True):  # type: ignore[no-untyped-def]
    return OneHotTaskConfig(
        name="semantic", classes=CLASSES, masked_cross_entropy=masked_cross_entropy
    ).build()


def _dacapo_task():  # type: ignore[no-untyped-def]
    return OneHotTaskConfig(name="semantic", classes=CLASSES).build()


def test_default_target_is_one_hot_and_the_weight_all_ones_as_dacapo() -> None:
    task = _dacapo_task()
    labels = np.array([[[0, 1], [2, 1]]], dtype=np.uint8)
    gt = _gt(labels)
    target = task.predictor.create_target(gt)
    assert target.data.dtype == np.float32
    np.testing.assert_array_equal(target.data, [labels == c for c in range(3)])
    assert target.axis_names == ("c^", "z", "y", "x")
    mask = _gt(np.zeros_like(labels))  # DaCapo's one-hot task does not use the mask
    weight = task.predictor.create_weight(gt, target, mask)
    np.testing.assert_array_equal(weight.data, np.ones((3, 1, 2, 2), dtype=np.float32))


def test_default_loss_is_dacapos_summed_absolute_error() -> None:
    loss = _dacapo_task().loss
    generator = torch.Generator().manual_seed(0)
    prediction = torch.randn(2, 3, 2, 2, 2, generator=generator)
    target = (torch.rand(2, 3, 2, 2, 2, generator=generator) > 0.5).float()
    expected = (prediction - target).abs().sum().item()
    assert loss.compute(prediction, target).item() == pytest.approx(expected)
    weight = torch.zeros_like(target)  # not applied, as in DaCapo
    assert loss.compute(prediction, target, weight).item() == pytest.approx(expected)
    assert loss.compute(target, target, weight).item() == 0.0


def test_null_kernel_size_is_dacapos_3() -> None:
    architecture = UNetConfig(
        name="unet", input_shape=[20, 20, 20], downsample_factors=[[2, 2, 2]], num_fmaps=2
    ).build()
    model = _dacapo_task().create_model(architecture)
    assert tuple(model.output_shape) == tuple(s - 2 for s in architecture.output_shape)
    config = OneHotTaskConfig(name="semantic", classes=CLASSES, kernel_size=1)
    model = config.build().create_model(architecture)
    assert tuple(model.output_shape) == tuple(architecture.output_shape)


def _gt(labels: np.ndarray) -> InMemoryArray:
    return InMemoryArray(labels, voxel_size=(4, 4, 4), offset=(0, 4, 8))


def test_target_is_the_class_index_as_float32() -> None:
    task = _task()
    assert isinstance(task, Task)
    labels = np.array([[[0, 1], [2, 1]]], dtype=np.uint8)
    target = task.predictor.create_target(_gt(labels))
    assert target.data.dtype == np.float32
    np.testing.assert_array_equal(target.data, labels[np.newaxis].astype(np.float32))
    assert target.voxel_size == (4, 4, 4)
    assert target.offset == (0, 4, 8)
    assert target.axis_names == ("c^", "z", "y", "x")


def test_labels_outside_the_classes_are_refused() -> None:
    labels = np.array([[[0, 3]]], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"labels 0 to 3, but there are only 3 classes"):
        _task().predictor.create_target(_gt(labels))


def test_weight_is_one_inside_the_mask() -> None:
    task = _task()
    gt = _gt(np.zeros((1, 2, 3), dtype=np.uint8))
    target = task.predictor.create_target(gt)
    weight = task.predictor.create_weight(gt, target)
    assert weight.data.dtype == np.float32
    np.testing.assert_array_equal(weight.data, np.ones((1, 1, 2, 3)))
    mask = _gt(np.array([[[1, 0, 1], [0, 0, 2]]], dtype=np.uint8))
    weight = task.predictor.create_weight(gt, target, mask)
    np.testing.assert_array_equal(weight.data, [[[[1, 0, 1], [0, 0, 1]]]])


def test_loss_is_weighted_cross_entropy() -> None:
    loss = _task().loss
    generator = torch.Generator().manual_seed(0)
    prediction = torch.randn(2, 3, 2, 2, 2, generator=generator)
    target = torch.randint(0, 3, (2, 1, 2, 2, 2), generator=generator).float()
    weight = torch.rand(2, 1, 2, 2, 2, generator=generator)
    per_voxel = torch.nn.functional.cross_entropy(prediction, target[:, 0].long(), reduction="none")
    assert loss.compute(prediction, target, weight).item() == pytest.approx(
        (weight[:, 0] * per_voxel).mean().item()
    )
    assert loss.compute(prediction, target).item() == pytest.approx(per_voxel.mean().item())
    assert loss.compute(prediction, target, torch.zeros_like(weight)).item() == 0.0
    # Integer targets without a channel axis work too.
    assert loss.compute(prediction, target[:, 0].long(), weight).item() == pytest.approx(
        (weight[:, 0] * per_voxel).mean().item()
    )


def test_loss_decreases_towards_the_target() -> None:
    loss = _task().loss
    target = torch.tensor([[[[0.0, 1.0], [2.0, 1.0]]]])  # (1, 1, 2, 2): 2D
    one_hot = torch.nn.functional.one_hot(target[:, 0].long(), 3).permute(0, 3, 1, 2).float()
    weight = torch.ones_like(target)
    values = [loss.compute(scale * one_hot, target, weight).item() for scale in (0, 1, 4, 30)]
    assert values[0] == pytest.approx(np.log(3))
    assert values == sorted(values, reverse=True)
    assert values[-1] < 1e-9
    assert loss.compute(-one_hot, target, weight).item() > values[0]


def test_model_adds_a_logits_head() -> None:
    task = OneHotTaskConfig(name="semantic", classes=CLASSES, kernel_size=1).build()
    architecture = UNetConfig(
        name="unet", input_shape=[20, 20, 20], downsample_factors=[[2, 2, 2]], num_fmaps=2
    ).build()
    model = task.create_model(architecture)
    assert model.num_out_channels == 3
    assert tuple(model.output_shape) == tuple(architecture.output_shape)
    with torch.no_grad():
        model.head.weight.fill_(-1.0)
        model.head.bias.fill_(-1.0)
        out = model(torch.randn(1, 1, 20, 20, 20))
    assert out.shape == (1, 3, *architecture.output_shape)
    # No activation: the U-Net's features are ReLU outputs (>= 0), so the logits are <= -1.
    assert out.max() <= -1


@pytest.mark.parametrize("classes", [["only"], ["a", "a"]])
def test_invalid_classes_are_refused(classes: list[str]) -> None:
    with pytest.raises(ValueError, match="classes must"):
        OneHotTaskConfig(name="semantic", classes=classes)
