"""Which datasets the simple tensor trainer refuses, and why (one sentence each), and what
their volumes are estimated to take in memory. Reads nothing but array metadata."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dacapo_trainers import Array, Dataset, Model, output_voxel_size, sample_point_problem

_BYTES_PER_GB = 1e9


def spatial_shape(array: Array) -> tuple[int, ...]:
    """The shape of the spatial (last ``len(voxel_size)``) axes of ``array``."""
    return tuple(int(s) for s in array.data.shape[-len(array.voxel_size) :])


def geometry_problem(dataset: Dataset) -> str | None:
    """Why ``dataset``'s arrays cannot be sampled on their voxel grids, or None if they can.

    gt and mask share one grid; raw's voxel size is gt's, or an integer multiple of it (a
    model that upsamples, as DaCapo's ``upsample_factors``; the factor is checked against
    the model's ``scale`` when training starts).
    """
    gt = dataset.gt
    if gt is None:
        return (
            f"dataset {dataset.name!r} has no gt; SimpleTensorTrainer trains only on datasets "
            "with ground truth"
        )
    raw_voxel = tuple(int(v) for v in dataset.raw.voxel_size)
    gt_voxel = tuple(int(v) for v in gt.voxel_size)
    if len(gt_voxel) != len(raw_voxel) or any(
        g <= 0 or r % g for r, g in zip(raw_voxel, gt_voxel, strict=True)
    ):
        return (
            f"dataset {dataset.name!r}: gt has voxel size {gt_voxel} but raw has {raw_voxel}; "
            "SimpleTensorTrainer does not resample: gt must be on raw's grid or finer by an "
            "integer factor (for a model that upsamples)"
        )
    arrays = {"raw": dataset.raw, "gt": gt}
    if dataset.mask is not None:
        arrays["mask"] = dataset.mask
        if tuple(int(v) for v in dataset.mask.voxel_size) != gt_voxel:
            return (
                f"dataset {dataset.name!r}: mask has voxel size {tuple(dataset.mask.voxel_size)}"
                f" but gt has {gt_voxel}; SimpleTensorTrainer does not resample"
            )
    for name, array in arrays.items():
        voxel_size = tuple(int(v) for v in array.voxel_size)
        if any(int(o) % v for o, v in zip(array.offset, voxel_size, strict=True)):
            return (
                f"dataset {dataset.name!r}: {name} offset {tuple(array.offset)} is not a "
                f"multiple of its voxel size {voxel_size}"
            )
    if dataset.raw.data.ndim - len(raw_voxel) > 1:
        return (
            f"dataset {dataset.name!r}: raw has more than one non-spatial axis "
            f"(shape {tuple(dataset.raw.data.shape)})"
        )
    mask = dataset.mask
    if mask is not None and (
        spatial_shape(mask) != spatial_shape(gt) or tuple(mask.offset) != tuple(gt.offset)
    ):
        return (
            f"dataset {dataset.name!r}: mask must cover the gt exactly (same offset and shape); "
            f"gt has offset {tuple(gt.offset)} shape {spatial_shape(gt)}, mask "
            f"offset {tuple(mask.offset)} shape {spatial_shape(mask)}"
        )
    return sample_point_problem(dataset)


def model_problem(datasets: Sequence[Dataset], model: Model) -> str | None:
    """Why ``model`` cannot train on ``datasets``: raw channels it does not take, or gt not on
    the grid it predicts on (``model.scale`` of raw's voxel size); None if it can."""
    for dataset in datasets:
        assert dataset.gt is not None
        raw = dataset.raw
        count = 1 if raw.data.ndim == len(raw.voxel_size) else int(raw.data.shape[0])
        if count != model.num_in_channels:
            return (
                f"dataset {dataset.name!r} has {count} raw channel(s) but the "
                f"model takes {model.num_in_channels}"
            )
        voxel_size = tuple(int(v) for v in raw.voxel_size)
        gt_voxel_size = tuple(int(v) for v in dataset.gt.voxel_size)
        predicted = output_voxel_size(model, voxel_size)
        if predicted != gt_voxel_size:
            return (
                f"dataset {dataset.name!r} has gt voxel size {gt_voxel_size} but the "
                f"model predicts at {predicted} from raw at {voxel_size}; gt must be "
                "on the prediction's grid (SimpleTensorTrainer does not resample)"
            )
    return None


def batch_shape_problem(datasets: Sequence[Dataset]) -> str | None:
    """Why the samples of ``datasets`` cannot share a batch (voxel sizes or channels that
    differ between datasets), or None."""
    first = datasets[0]
    assert first.gt is not None
    for dataset in datasets[1:]:
        assert dataset.gt is not None
        for what, mine, theirs in (
            ("voxel size", tuple(dataset.raw.voxel_size), tuple(first.raw.voxel_size)),
            ("gt voxel size", tuple(dataset.gt.voxel_size), tuple(first.gt.voxel_size)),
            ("gt channels", _channels(dataset.gt), _channels(first.gt)),
        ):
            if mine != theirs:
                return (
                    f"dataset {dataset.name!r} has {what} {mine} but dataset {first.name!r} "
                    f"has {theirs}; SimpleTensorTrainer does not resample"
                )
    return None


def _channels(array: Array) -> tuple[int, ...]:
    shape = tuple(int(s) for s in array.data.shape)
    return shape[: len(shape) - len(array.voxel_size)]


def estimate_nbytes(dataset: Dataset) -> int:
    """Estimated memory of ``dataset``'s volumes: raw at its dtype, target, weight as float32,
    gt at its dtype and the mask.

    Of raw, the part over the gt's region is counted (the model's context, unknown here, adds
    a margin). The number of target (and weight) channels is not known before the task runs;
    it is bounded by the number of spatial axes (nearest-neighbour affinities). The real size
    is checked again once the volumes are read.
    """
    assert dataset.gt is not None
    dims = len(dataset.raw.voxel_size)
    raw_channels = 1 if dataset.raw.data.ndim == dims else int(dataset.raw.data.shape[0])
    raw_voxel = [int(v) for v in dataset.raw.voxel_size]
    gt_voxel = [int(v) for v in dataset.gt.voxel_size]
    raw_voxels = math.prod(
        min(r, -(-g * gv // rv))
        for r, g, rv, gv in zip(
            spatial_shape(dataset.raw), spatial_shape(dataset.gt), raw_voxel, gt_voxel, strict=True
        )
    )
    gt_voxels = math.prod(spatial_shape(dataset.gt))
    raw_bytes = raw_voxels * raw_channels * np.dtype(dataset.raw.dtype).itemsize
    gt_bytes = np.dtype(dataset.gt.dtype).itemsize + 1
    return raw_bytes + gt_voxels * (gt_bytes + 4 * 2 * dims)


def budget_problem(nbytes: int, budget_gb: float, *, estimated: bool) -> str | None:
    """The refusal for ``nbytes`` of volumes against a budget of ``budget_gb``, or None."""
    if nbytes <= budget_gb * _BYTES_PER_GB:
        return None
    size = f"{'an estimated ' if estimated else ''}{nbytes / _BYTES_PER_GB:.2f} GB"
    return (
        f"the training volumes need {size} in memory, more than "
        f"memory_budget_gb = {budget_gb:g}; raise memory_budget_gb if the machine has the "
        "memory, or use GunpowderTrainerConfig, which reads crops from disk"
    )
