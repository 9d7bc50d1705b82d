"""Which datasets the gunpowder trainer refuses, and why (one sentence each).

Pure geometry of the datasets' arrays (and the model's shapes, when given); nothing is read
but array metadata and sample points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dacapo_trainers import Array, Dataset, Model, sample_point_problem, world_bounds


def channels(array: Array) -> tuple[int, ...]:
    """The shape of ``array``'s leading non-spatial (channel) axes."""
    dims = len(array.voxel_size)
    shape = tuple(int(s) for s in array.data.shape)
    return shape[: len(shape) - dims]


def _divides(fine: tuple[int, ...], coarse: tuple[int, ...]) -> bool:
    return all(f > 0 and c % f == 0 for f, c in zip(fine, coarse, strict=True))


def _overlap_problem(dataset: Dataset) -> str | None:
    assert dataset.gt is not None
    raw_begin, raw_end = world_bounds(dataset.raw)
    gt_begin, gt_end = world_bounds(dataset.gt)
    if all(
        max(rb, gb) < min(re, ge)
        for rb, re, gb, ge in zip(raw_begin, raw_end, gt_begin, gt_end, strict=True)
    ):
        return None
    return (
        f"dataset {dataset.name!r}: its raw (world {raw_begin} to {raw_end}) does not overlap "
        f"its gt (world {gt_begin} to {gt_end}), so every sample would see only padding as "
        "raw; check the arrays' offsets and voxel sizes"
    )


def _gt_voxel_problem(dataset: Dataset, output_voxel: tuple[int, ...] | None) -> str | None:
    """gt's (and the mask's) voxel size against raw's, and the model's output voxel size."""
    assert dataset.gt is not None
    raw_voxel = tuple(int(v) for v in dataset.raw.voxel_size)
    gt_voxel = tuple(int(v) for v in dataset.gt.voxel_size)
    if output_voxel is not None and gt_voxel != output_voxel:
        scaled = "" if output_voxel == raw_voxel else " (model.scale of the raw voxel size)"
        return (
            f"dataset {dataset.name!r} has gt voxel size {gt_voxel} but the model predicts "
            f"at {output_voxel}{scaled} from raw at {raw_voxel}; gt must be on the "
            "prediction's grid (GunpowderTrainer does not resample)"
        )
    if output_voxel is None and not (
        _divides(gt_voxel, raw_voxel) or _divides(raw_voxel, gt_voxel)
    ):
        return (
            f"dataset {dataset.name!r} has gt voxel size {gt_voxel} and raw voxel size "
            f"{raw_voxel}; one must be an integer multiple of the other (the model's "
            "up- or downsampling factor)"
        )
    mask = dataset.mask
    if mask is not None and tuple(int(v) for v in mask.voxel_size) != gt_voxel:
        return (
            f"dataset {dataset.name!r} has mask voxel size {tuple(mask.voxel_size)} but gt "
            f"voxel size {gt_voxel}; they must match"
        )
    return None


def _model_problem(dataset: Dataset, model: Model) -> str | None:
    raw = dataset.raw
    shape = tuple(int(s) for s in raw.data.shape[-len(raw.voxel_size) :])
    input_shape = tuple(int(s) for s in model.input_shape)
    if any(s < i for s, i in zip(shape, input_shape, strict=True)):
        return (
            f"dataset {dataset.name!r} has raw of shape {shape}, smaller than the model "
            f"input {input_shape}"
        )
    count = int(np.prod(channels(raw) or (1,)))
    if count != int(model.num_in_channels):
        return (
            f"dataset {dataset.name!r} has {count} raw channel(s) but the model takes "
            f"{model.num_in_channels}"
        )
    return None


def mask_channels(dataset: Dataset) -> tuple[int, ...]:
    """The channels of the mask a sample carries: the mask's, or gt's (DaCapo's mask of ones
    for a dataset without one has gt's shape)."""
    assert dataset.gt is not None
    return channels(dataset.mask if dataset.mask is not None else dataset.gt)


def datasets_problem(
    datasets: Sequence[Dataset], output_voxel: tuple[int, ...] | None, model: Model | None
) -> str | None:
    """Why the gunpowder trainer cannot train on ``datasets``, or None.

    :param output_voxel: the model's output voxel size (``model.scale``), when known.
    """
    if not datasets:
        return "there are no training datasets"
    first = datasets[0]
    raw_voxel = tuple(first.raw.voxel_size)
    for dataset in datasets:
        raw = dataset.raw
        if dataset.gt is None:
            return f"dataset {dataset.name!r} has no gt; GunpowderTrainer needs gt to train"
        if len(raw.voxel_size) != len(raw_voxel):
            return f"dataset {dataset.name!r} has a different number of spatial axes"
        if tuple(raw.voxel_size) != raw_voxel:
            return (
                f"dataset {dataset.name!r} has raw voxel size {tuple(raw.voxel_size)} but "
                f"dataset {first.name!r} has {raw_voxel}; GunpowderTrainer does not resample"
            )
        problem = _gt_voxel_problem(dataset, output_voxel) or _overlap_problem(dataset)
        problem = problem or sample_point_problem(dataset)
        if problem is not None:
            return problem
        assert first.gt is not None
        for what, mine, theirs in (
            ("raw channels", channels(raw), channels(first.raw)),
            ("gt voxel size", tuple(dataset.gt.voxel_size), tuple(first.gt.voxel_size)),
            ("gt channels", channels(dataset.gt), channels(first.gt)),
            ("mask channels", mask_channels(dataset), mask_channels(first)),
        ):
            if mine != theirs:
                return (
                    f"dataset {dataset.name!r} has {what} {mine} but dataset {first.name!r} "
                    f"has {theirs}; the samples of one batch must have the same shapes"
                )
        if model is not None:
            problem = _model_problem(dataset, model)
            if problem is not None:
                return problem
    return None
