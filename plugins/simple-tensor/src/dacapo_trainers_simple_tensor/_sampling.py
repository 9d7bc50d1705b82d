"""Drawing batches from training volumes: a plan per sample, then tensor slicing only.

A step first draws a :class:`SamplePlan` per sample from one ``torch.Generator`` (always the
same number of draws, so the generator state alone decides every later batch), then cuts the
crops out of the volumes by slicing and applies the plan's flips and transposes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch

from dacapo_trainers import BatchGeometry

from ._volumes import TrainingVolume, crop_offsets


@attrs.frozen
class SamplePlan:
    """Where one sample comes from and how it is augmented.

    :param volume: index of the training volume.
    :param origin: gt voxel coordinates of the output (target) crop's first voxel.
    :param flips: per spatial axis, whether to mirror it.
    :param permutation: spatial axis order: axis ``i`` of the sample is axis
        ``permutation[i]`` of the crop.
    """

    volume: int
    origin: tuple[int, ...]
    flips: tuple[bool, ...]
    permutation: tuple[int, ...]


def augment(tensor: torch.Tensor, plan: SamplePlan) -> torch.Tensor:
    """Apply ``plan``'s flips, then its transposes, to the last spatial axes of ``tensor``."""
    dims = len(plan.flips)
    flip_dims = [axis - dims for axis, flip in enumerate(plan.flips) if flip]
    if flip_dims:
        tensor = tensor.flip(flip_dims)
    if plan.permutation != tuple(range(dims)):
        lead = tensor.ndim - dims
        tensor = tensor.permute(*range(lead), *(lead + axis for axis in plan.permutation))
    return tensor


def _window(start: Sequence[int], origin: Sequence[int], shape: Sequence[int]) -> Any:
    """Index of the last ``len(shape)`` axes: ``shape`` voxels from voxel ``start`` of an array
    whose voxel 0 sits at voxel coordinates ``origin``."""
    return (
        ...,
        *(slice(s - o, s - o + n) for s, o, n in zip(start, origin, shape, strict=True)),
    )


class BatchSampler:
    """Draws training batches of ``batch_size`` samples from ``volumes``.

    The raw crop has the model's input shape on raw's grid; target, weight, gt and mask crops
    have its output shape on gt's grid (``output_voxel_size``, finer than raw's by an integer
    factor for a model that upsamples), centred in the raw crop in world units (the offset
    rounded down to the gt grid). Flips are drawn only for axes where that centring is exact
    (otherwise the mirrored output would be off by a voxel against the raw); transposes only
    permute axes with the same voxel sizes, input size and output size.
    """

    def __init__(
        self,
        volumes: Sequence[TrainingVolume],
        input_shape: Sequence[int],
        output_shape: Sequence[int],
        batch_size: int,
        *,
        flips: bool,
        transposes: bool,
    ) -> None:
        if not volumes:
            raise ValueError("SimpleTensorTrainer needs at least one training dataset")
        self.volumes = list(volumes)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = tuple(int(s) for s in output_shape)
        self.batch_size = batch_size
        self.voxel_size = self.volumes[0].voxel_size
        self.output_voxel_size = self.volumes[0].gt_voxel_size
        # raw voxels per gt voxel, and the output crop's offset in the input (gt voxels)
        self.factor, self.context, centred = crop_offsets(
            self.input_shape, self.output_shape, self.voxel_size, self.output_voxel_size
        )
        dims = len(self.input_shape)
        for volume in self.volumes:
            if len(volume.voxel_size) != dims:
                raise ValueError(
                    f"dataset {volume.name!r} has {len(volume.voxel_size)} spatial axes but the "
                    f"model's input shape {self.input_shape} has {dims}"
                )
            if (volume.voxel_size, volume.gt_voxel_size) != (
                self.voxel_size,
                self.output_voxel_size,
            ):
                raise ValueError(
                    f"dataset {volume.name!r} has raw / gt voxel sizes {volume.voxel_size} / "
                    f"{volume.gt_voxel_size} but dataset {self.volumes[0].name!r} has "
                    f"{self.voxel_size} / {self.output_voxel_size}; SimpleTensorTrainer "
                    "does not resample"
                )
        self._bounds = [
            v.start_bounds(self.input_shape, self.output_shape, self.factor, self.context)
            for v in volumes
        ]
        self._points = [
            self._point_starts(v, b) for v, b in zip(volumes, self._bounds, strict=True)
        ]
        weights = [v.sampling_weight for v in self.volumes]
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"dataset weights must be >= 0 and not all 0, got {weights}")
        self._weights = torch.tensor(weights, dtype=torch.float64)
        self._flip_axes = [a for a in range(dims) if centred[a]] if flips else []
        self._transpose_groups = self._find_transpose_groups() if transposes else []

    def _point_starts(
        self, volume: TrainingVolume, bounds: tuple[tuple[int, ...], tuple[int, ...]]
    ) -> torch.Tensor | None:
        """Raw crop starts putting each sample point (a gt voxel inside the gt) on the output
        crop's centre voxel (voxel ``(output - 1) // 2``, as the gunpowder trainer does).

        Points whose crop would reach past the raw or gt are moved the least distance that
        makes the crop fit: this trainer cannot pad. Points outside the gt are refused
        before (:func:`~._volumes.sample_point_problem`).
        """
        if not volume.sample_points:
            return None
        points = torch.tensor(volume.sample_points, dtype=torch.int64)
        origins = points - torch.tensor([(o - 1) // 2 for o in self.output_shape])
        starts = torch.div(
            origins - torch.tensor(self.context), torch.tensor(self.factor), rounding_mode="floor"
        )
        return starts.clamp(torch.tensor(bounds[0]), torch.tensor(bounds[1]))

    def _find_transpose_groups(self) -> list[list[int]]:
        groups: dict[tuple[int, int, int, int], list[int]] = {}
        for axis, key in enumerate(
            zip(
                self.voxel_size,
                self.output_voxel_size,
                self.input_shape,
                self.output_shape,
                strict=True,
            )
        ):
            groups.setdefault(key, []).append(axis)
        return [axes for axes in groups.values() if len(axes) > 1]

    def draw(self, generator: torch.Generator) -> list[SamplePlan]:
        """Plans for one batch, drawn from ``generator`` alone."""
        size, dims = self.batch_size, len(self.input_shape)
        volume_ids = torch.multinomial(self._weights, size, replacement=True, generator=generator)
        uniform = torch.rand((size, dims), generator=generator, dtype=torch.float64)
        flip_draws = torch.rand((size, dims), generator=generator) < 0.5
        plans = []
        for sample, volume in enumerate(volume_ids.tolist()):
            low, high = self._bounds[volume]
            points = self._points[volume]
            u = uniform[sample].tolist()
            if points is not None:
                start = tuple(points[min(int(u[0] * len(points)), len(points) - 1)].tolist())
            else:
                start = tuple(
                    lo + min(int(x * (hi - lo + 1)), hi - lo)
                    for x, lo, hi in zip(u, low, high, strict=True)
                )
            origin = tuple(
                c + f * r for c, f, r in zip(self.context, self.factor, start, strict=True)
            )
            flips = [False] * dims
            for axis in self._flip_axes:
                flips[axis] = bool(flip_draws[sample, axis])
            permutation = list(range(dims))
            for axes in self._transpose_groups:
                order = torch.randperm(len(axes), generator=generator).tolist()
                for axis, pick in zip(axes, order, strict=True):
                    permutation[axis] = axes[pick]
            plans.append(SamplePlan(volume, origin, tuple(flips), tuple(permutation)))
        return plans

    def raw_start(self, plan: SamplePlan) -> tuple[int, ...]:
        """Raw voxel coordinates of the raw crop's first voxel."""
        return tuple(
            (o - c) // f for o, c, f in zip(plan.origin, self.context, self.factor, strict=True)
        )

    def geometry(self, plans: Sequence[SamplePlan]) -> BatchGeometry:
        """Where the samples of ``plans`` lie: raw on raw's grid, the output on gt's."""
        return BatchGeometry(
            raw_voxel_size=self.voxel_size,
            output_voxel_size=self.output_voxel_size,
            raw_offsets=[_world(self.raw_start(plan), self.voxel_size) for plan in plans],
            output_offsets=[_world(plan.origin, self.output_voxel_size) for plan in plans],
            axis_names=self.volumes[plans[0].volume].axis_names,
        )

    def batch(self, plans: Sequence[SamplePlan]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw ``(B, C, *input)``, target and weight ``(B, ..., *output)`` for ``plans``."""
        raws, targets, weights = [], [], []
        for plan in plans:
            volume = self.volumes[plan.volume]
            raw_index = _window(self.raw_start(plan), volume.raw_origin, self.input_shape)
            out_index = _window(plan.origin, volume.gt_origin, self.output_shape)
            # raw is held at the dataset's dtype: float32 per crop, before any flip
            raws.append(augment(volume.raw[raw_index].float(), plan))
            targets.append(augment(volume.target[out_index], plan))
            weights.append(augment(volume.weight[out_index], plan))
        return torch.stack(raws), torch.stack(targets), torch.stack(weights)

    def host_batch(self, plans: Sequence[SamplePlan]) -> tuple[torch.Tensor, torch.Tensor]:
        """gt and mask ``(B, ..., *output)`` for ``plans``, on the host (for snapshots)."""
        gts, masks = [], []
        for plan in plans:
            volume = self.volumes[plan.volume]
            index = _window(plan.origin, volume.gt_origin, self.output_shape)
            gts.append(augment(_host_tensor(volume.gt[index]), plan))
            masks.append(augment(_host_tensor(volume.mask[index]), plan))
        return torch.stack(gts), torch.stack(masks)


def _world(voxels: Sequence[int], voxel_size: Sequence[int]) -> tuple[int, ...]:
    return tuple(v * s for v, s in zip(voxels, voxel_size, strict=True))


def _host_tensor(crop: np.ndarray) -> torch.Tensor:  # type: ignore[type-arg]
    # torch cannot flip the unsigned types wider than 8 bits; labels fit in int64 here.
    if crop.dtype.kind == "u" and crop.dtype.itemsize > 1:
        crop = crop.astype(np.int64)
    elif crop.dtype == np.bool_:
        crop = crop.astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(crop))
