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

from dacapo_trainers import Array, Dataset, InMemoryArray, Predictor

from ._checks import geometry_problem, spatial_shape


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


def reach_problem(dataset: Dataset, shapes: tuple[Sequence[int], Sequence[int]]) -> str | None:
    """Why no sample of the model's input and output ``shapes`` fits in ``dataset`` (raw or
    gt smaller than the crops, along some axis), or None. Reads only metadata."""
    try:
        _sample_region(dataset, shapes)
    except ValueError as error:
        return str(error)
    return None


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
