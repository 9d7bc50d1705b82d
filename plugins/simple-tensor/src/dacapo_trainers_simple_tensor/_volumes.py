"""Training volumes: what a sample can reach of a dataset, with its target and weight computed
once.

Of raw, only the region a sample can reach is read (the gt's region grown by the model's
context, within the raw), at the dtype the dataset gives it; it becomes float32 per batch.

Geometry is kept in *voxel coordinates*: world offset // voxel size, so that raw and gt with
different offsets (raw usually extends beyond gt to give the network context) share one grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch

from dacapo_trainers import (
    Array,
    Dataset,
    InMemoryArray,
    Model,
    Predictor,
    output_voxel_size,
    sample_point_problem,
)

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


def model_problem(volumes: Sequence[TrainingVolume], model: Model) -> str | None:
    """Why ``model`` cannot train on ``volumes``: raw channels it does not take, or gt not on
    the grid it predicts on (``model.scale`` of raw's voxel size); None if it can."""
    for volume in volumes:
        if volume.raw.shape[0] != model.num_in_channels:
            return (
                f"dataset {volume.name!r} has {volume.raw.shape[0]} raw channel(s) but the "
                f"model takes {model.num_in_channels}"
            )
        predicted = output_voxel_size(model, volume.voxel_size)
        if predicted != volume.gt_voxel_size:
            return (
                f"dataset {volume.name!r} has gt voxel size {volume.gt_voxel_size} but the "
                f"model predicts at {predicted} from raw at {volume.voxel_size}; gt must be "
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


@attrs.define(eq=False)
class TrainingVolume:
    """One training dataset in memory.

    ``raw`` is ``(C, *raw_shape)`` at the dataset's dtype (float32 where torch has none such),
    the part of raw's grid (``voxel_size``) that samples can reach; ``target`` and
    ``weight`` are float32 with the predictor's leading axes and the gt's spatial shape, on
    gt's grid (``gt_voxel_size``: finer than raw's for a model that upsamples). ``gt`` and
    ``mask`` (both with gt's channels, if any) stay numpy on the host: only snapshots read
    them. Origins are voxel coordinates, each on its own array's grid, of each array's voxel
    0; ``sample_points`` are gt voxels.
    """

    name: str
    sampling_weight: float
    voxel_size: tuple[int, ...]
    axis_names: tuple[str, ...]
    raw: torch.Tensor
    raw_origin: tuple[int, ...]
    target: torch.Tensor
    weight: torch.Tensor
    gt: np.ndarray[Any, Any]
    mask: np.ndarray[Any, Any]
    gt_origin: tuple[int, ...]
    sample_points: tuple[tuple[int, ...], ...] | None
    output_voxel_size: tuple[int, ...] | None = None

    @property
    def gt_voxel_size(self) -> tuple[int, ...]:
        """The voxel size of gt, target, weight and mask (raw's unless set)."""
        return self.output_voxel_size or self.voxel_size

    @property
    def nbytes(self) -> int:
        """Bytes held by raw, target, weight, gt and mask."""
        tensors = (self.raw, self.target, self.weight)
        held = sum(t.numel() * t.element_size() for t in tensors)
        return held + _held_nbytes(self.gt) + _held_nbytes(self.mask)

    def to(self, device: torch.device) -> None:
        """Move raw, target and weight to ``device`` (a no-op where they already are)."""
        self.raw = self.raw.to(device)
        self.target = self.target.to(device)
        self.weight = self.weight.to(device)

    def start_bounds(
        self,
        input_shape: Sequence[int],
        output_shape: Sequence[int],
        factor: Sequence[int],
        context: Sequence[int],
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Lowest and highest raw voxel where a sample's raw crop may start (both inclusive);
        see :func:`start_bounds`."""
        return start_bounds(
            self.name,
            (self.raw_origin, tuple(self.raw.shape[1:])),
            (self.gt_origin, tuple(self.gt.shape[-len(self.voxel_size) :])),
            (input_shape, output_shape),
            factor,
            context,
        )


def crop_offsets(
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    voxel_size: Sequence[int],
    output_voxel_size: Sequence[int],
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[bool, ...]]:
    """Raw voxels per gt voxel (``factor``), the output crop's offset in the input crop in gt
    voxels (``context``: half the margin, rounded down to the gt grid), and per axis whether
    that centring is exact."""
    factor = tuple(r // g for r, g in zip(voxel_size, output_voxel_size, strict=True))
    margins = [
        i * r - o * g
        for i, o, r, g in zip(input_shape, output_shape, voxel_size, output_voxel_size, strict=True)
    ]
    context = tuple(m // 2 // g for m, g in zip(margins, output_voxel_size, strict=True))
    centred = tuple(
        m == 2 * c * g for m, c, g in zip(margins, context, output_voxel_size, strict=True)
    )
    return factor, context, centred


Box = tuple[Sequence[int], Sequence[int]]


def start_bounds(
    name: str,
    raw: Box,
    gt: Box,
    shapes: tuple[Sequence[int], Sequence[int]],
    factor: Sequence[int],
    context: Sequence[int],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Lowest and highest raw voxel where a sample's raw crop may start (both inclusive).

    The output crop starts at gt voxel ``context + factor * start`` (``factor``: raw voxels
    per gt voxel; ``context``: the output crop's offset in the input, in gt voxels, on a world
    grid that starts at 0). The output crop must lie in the gt and the raw crop in the raw.

    :param raw: raw's voxel origin and spatial shape (raw voxels).
    :param gt: gt's voxel origin and spatial shape (gt voxels).
    :param shapes: the model's input and output shapes.
    :raises ValueError: where no crop fits.
    """
    (raw_origin, raw_shape), (gt_origin, gt_shape) = raw, gt
    input_shape, output_shape = shapes
    low, high = [], []
    for axis, (i, o, f, c) in enumerate(
        zip(input_shape, output_shape, factor, context, strict=True)
    ):
        gt_low, gt_high = gt_origin[axis], gt_origin[axis] + gt_shape[axis] - o
        lo = max(-((c - gt_low) // f), raw_origin[axis])
        hi = min((gt_high - c) // f, raw_origin[axis] + raw_shape[axis] - i)
        if hi < lo:
            raise ValueError(
                f"dataset {name!r} is too small for the model: input "
                f"{tuple(input_shape)} / output {tuple(output_shape)} voxels do not fit in "
                f"raw {tuple(raw_shape)} at voxel origin {tuple(raw_origin)} and gt "
                f"{tuple(gt_shape)} at voxel origin {tuple(gt_origin)} (axis {axis})"
            )
        low.append(lo)
        high.append(hi)
    return tuple(low), tuple(high)


def _held_nbytes(array: np.ndarray[Any, Any]) -> int:
    """Bytes ``array`` holds: a broadcast axis (stride 0) holds one value, not its length."""
    kept = [n for n, stride in zip(array.shape, array.strides, strict=True) if stride]
    return math.prod(kept) * array.itemsize


def _voxel_origin(array: Array) -> tuple[int, ...]:
    return tuple(int(o) // int(v) for o, v in zip(array.offset, array.voxel_size, strict=True))


def _read(array: Array, index: Any = ...) -> np.ndarray[Any, Any]:
    return np.asarray(array.data[index])


def _sample_region(
    dataset: Dataset, shapes: tuple[Sequence[int], Sequence[int]] | None
) -> tuple[tuple[int, ...], tuple[slice, ...]]:
    """The raw voxel origin and spatial index of what samples of ``dataset`` can reach: raw
    crops from the lowest to the highest start (:func:`start_bounds`); all of raw without the
    model's ``shapes`` or where they do not apply (refused later, with the reason)."""
    raw, gt = dataset.raw, dataset.gt
    assert gt is not None
    origin, shape = _voxel_origin(raw), spatial_shape(raw)
    whole = (origin, tuple(slice(None) for _ in shape))
    voxel_size = tuple(int(v) for v in raw.voxel_size)
    gt_voxel = tuple(int(v) for v in gt.voxel_size)
    if shapes is None or any(len(s) != len(voxel_size) for s in shapes):
        return whole
    factor, context, _ = crop_offsets(*shapes, voxel_size, gt_voxel)
    low, high = start_bounds(
        dataset.name,
        (origin, shape),
        (_voxel_origin(gt), spatial_shape(gt)),
        shapes,
        factor,
        context,
    )
    begin = tuple(lo - o for lo, o in zip(low, origin, strict=True))
    end = tuple(hi + i - o for hi, i, o in zip(high, shapes[0], origin, strict=True))
    return low, tuple(slice(b, e) for b, e in zip(begin, end, strict=True))


def _raw_tensor(data: np.ndarray[Any, Any]) -> torch.Tensor:
    """``data`` as a tensor of its own dtype (native byte order), or float32 where torch has no
    such dtype; batches convert it to float32 (DaCapo: ``torch.as_tensor(raw).float()``)."""
    data = np.ascontiguousarray(data.astype(data.dtype.newbyteorder("="), copy=False))
    try:
        return torch.from_numpy(data)
    except TypeError:
        return torch.from_numpy(data.astype(np.float32))


def load_volume(
    dataset: Dataset,
    predictor: Predictor,
    shapes: tuple[Sequence[int], Sequence[int]] | None = None,
) -> TrainingVolume:
    """Read what samples of ``dataset`` can reach and compute its target and weight once.

    :param shapes: the model's input and output shapes; raw is read only where crops of these
        shapes can reach (all of it without them). gt and mask are read whole.
    """
    problem = geometry_problem(dataset)
    if problem is not None:
        raise ValueError(problem)
    gt_array = dataset.gt
    assert gt_array is not None
    voxel_size = tuple(int(v) for v in dataset.raw.voxel_size)
    gt_voxel_size = tuple(int(v) for v in gt_array.voxel_size)
    dims = len(voxel_size)
    raw_origin, region = _sample_region(dataset, shapes)
    raw = _read(dataset.raw, (..., *region))
    if raw.ndim == dims:
        raw = raw[np.newaxis]
    gt = _read(gt_array)
    gt_shape = gt.shape[-dims:]
    # without a mask, DaCapo's: ones of gt's shape, channels included (held as one value)
    ones = dataset.mask is None
    mask = np.ones(gt.shape, dtype=np.uint8) if ones else _read(dataset.mask)  # type: ignore[arg-type]
    gt_in = InMemoryArray(gt, voxel_size=gt_voxel_size, offset=gt_array.offset)
    mask_in = InMemoryArray(mask, voxel_size=gt_voxel_size, offset=gt_array.offset)
    target = predictor.create_target(gt_in)
    weight = predictor.create_weight(gt_in, target, mask_in)
    tensors = {}
    for name, array in (("target", target), ("weight", weight)):
        data = np.asarray(array.data, dtype=np.float32)
        if data.shape[-dims:] != gt_shape:
            raise ValueError(
                f"dataset {dataset.name!r}: the predictor's {name} has spatial shape "
                f"{data.shape[-dims:]}, not the gt's {gt_shape}; SimpleTensorTrainer needs "
                "them on the gt's voxels"
            )
        tensors[name] = torch.from_numpy(np.ascontiguousarray(data))
    if ones:
        mask = np.broadcast_to(np.uint8(1), gt.shape)
    gt_origin = _voxel_origin(gt_array)
    points = None
    if dataset.sample_points is not None:
        points = tuple(
            tuple(math.floor(float(p) / v) for p, v in zip(point, gt_voxel_size, strict=True))
            for point in dataset.sample_points
        )
    axis_names = tuple(gt_array.axis_names)[-dims:]
    return TrainingVolume(
        name=dataset.name,
        sampling_weight=float(dataset.weight),
        voxel_size=voxel_size,
        axis_names=axis_names,
        raw=_raw_tensor(raw),
        raw_origin=raw_origin,
        target=tensors["target"],
        weight=tensors["weight"],
        gt=gt,
        mask=mask,
        gt_origin=gt_origin,
        sample_points=points,
        output_voxel_size=gt_voxel_size,
    )
