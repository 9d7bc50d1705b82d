"""Training volumes: a dataset read whole, with its target and weight computed once.

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

from dacapo_trainers import Array, Dataset, InMemoryArray, Model, Predictor, output_voxel_size

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


def sample_point_problem(dataset: Dataset) -> str | None:
    """The first sample point of ``dataset`` outside its gt's region, as a refusal, or None.

    Sample points are world coordinates; a point outside the gt cannot be the centre of an
    output crop (it used to be moved silently to the nearest crop).
    """
    gt = dataset.gt
    if gt is None or not dataset.sample_points:
        return None
    begin = np.asarray(gt.offset, dtype=np.float64)
    end = begin + np.asarray(spatial_shape(gt)) * np.asarray(gt.voxel_size)
    points = np.asarray(dataset.sample_points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != len(begin):
        return (
            f"dataset {dataset.name!r}: sample points must each have {len(begin)} world "
            f"coordinates, got an array of shape {points.shape}"
        )
    outside = np.flatnonzero(np.any((points < begin) | (points >= end), axis=1))
    if len(outside) == 0:
        return None
    point = tuple(float(p) for p in points[outside[0]])
    return (
        f"dataset {dataset.name!r}: sample point {point} lies outside its gt, which covers "
        f"{tuple(int(b) for b in begin)} to {tuple(int(e) for e in end)} (world units, end "
        f"excluded; {len(outside)} of its {len(points)} points are outside); sample points "
        "are world coordinates inside the gt"
    )


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
    """Estimated memory of ``dataset``'s volumes: raw, target, weight and mask as float32.

    The number of target (and weight) channels is not known before the task runs; it is
    bounded by the number of spatial axes (nearest-neighbour affinities). The real size is
    checked again once the target is computed.
    """
    assert dataset.gt is not None
    dims = len(dataset.raw.voxel_size)
    raw_channels = 1 if dataset.raw.data.ndim == dims else int(dataset.raw.data.shape[0])
    raw_voxels = math.prod(spatial_shape(dataset.raw))
    gt_voxels = math.prod(spatial_shape(dataset.gt))
    return 4 * (raw_voxels * raw_channels + gt_voxels * (2 * dims + 1))


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

    ``raw`` is ``(C, *raw_shape)`` float32 on raw's grid (``voxel_size``); ``target`` and
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
        """Bytes held by raw, target, weight and mask."""
        tensors = (self.raw, self.target, self.weight)
        return sum(t.numel() * t.element_size() for t in tensors) + int(self.mask.nbytes)

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
        """Lowest and highest raw voxel where a sample's raw crop may start (both inclusive).

        The output crop starts at gt voxel ``context + factor * start`` (``factor``: raw
        voxels per gt voxel; ``context``: the output crop's offset in the input, in gt
        voxels, on a world grid that starts at 0). The output crop must lie in the gt and the
        raw crop in the raw. Raises :class:`ValueError` where no crop fits.
        """
        low, high = [], []
        gt_shape = self.gt.shape[-len(self.voxel_size) :]
        raw_shape = self.raw.shape[1:]
        for axis, (i, o, f, c) in enumerate(
            zip(input_shape, output_shape, factor, context, strict=True)
        ):
            gt_low, gt_high = self.gt_origin[axis], self.gt_origin[axis] + gt_shape[axis] - o
            lo = max(-((c - gt_low) // f), self.raw_origin[axis])
            hi = min((gt_high - c) // f, self.raw_origin[axis] + raw_shape[axis] - i)
            if hi < lo:
                raise ValueError(
                    f"dataset {self.name!r} is too small for the model: input "
                    f"{tuple(input_shape)} / output {tuple(output_shape)} voxels do not fit in "
                    f"raw {tuple(raw_shape)} at voxel origin {self.raw_origin} and gt "
                    f"{tuple(gt_shape)} at voxel origin {self.gt_origin} (axis {axis})"
                )
            low.append(lo)
            high.append(hi)
        return tuple(low), tuple(high)


def _voxel_origin(array: Array) -> tuple[int, ...]:
    return tuple(int(o) // int(v) for o, v in zip(array.offset, array.voxel_size, strict=True))


def _read(array: Array) -> np.ndarray[Any, Any]:
    return np.asarray(array.data[...])


def load_volume(dataset: Dataset, predictor: Predictor) -> TrainingVolume:
    """Read ``dataset`` whole and compute its target and weight once with ``predictor``."""
    problem = geometry_problem(dataset)
    if problem is not None:
        raise ValueError(problem)
    gt_array = dataset.gt
    assert gt_array is not None
    voxel_size = tuple(int(v) for v in dataset.raw.voxel_size)
    gt_voxel_size = tuple(int(v) for v in gt_array.voxel_size)
    dims = len(voxel_size)
    # raw as the dataset gives it, cast only (DaCapo: torch.as_tensor(raw).float())
    raw = _read(dataset.raw).astype(np.float32, copy=False)
    if raw.ndim == dims:
        raw = raw[np.newaxis]
    gt = _read(gt_array)
    gt_shape = gt.shape[-dims:]
    # without a mask, DaCapo's: ones of gt's shape, channels included
    mask = np.ones(gt.shape, dtype=np.uint8) if dataset.mask is None else _read(dataset.mask)
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
        raw=torch.from_numpy(np.ascontiguousarray(raw)),
        raw_origin=_voxel_origin(dataset.raw),
        target=tensors["target"],
        weight=tensors["weight"],
        gt=gt,
        mask=mask,
        gt_origin=gt_origin,
        sample_points=points,
        output_voxel_size=gt_voxel_size,
    )
