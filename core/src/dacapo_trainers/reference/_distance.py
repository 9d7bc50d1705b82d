"""Signed distances: target, weight, head and loss (imports torch and scipy; loaded by build())."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch
from scipy import ndimage

from dacapo_trainers import InMemoryArray

from ._affinities import balanced_weights
from ._head import HeadModel
from ._labels import mask_data

#: Added to a voxel's normalized distance, capped, before comparing it with its normalized
#: distance to the edge of the known region (DaCapo's epsilon and threshold).
_EPSILON = 0.05
_THRESHOLD = 0.8


def signed_distances(inside: np.ndarray, voxel_size: Sequence[int]) -> np.ndarray:
    """Distance (world units) from each voxel centre to the nearest inside/outside face.

    Positive inside, negative outside. The faces between voxels are found on a grid of twice
    the resolution, where the distance transform runs with half the voxel size. Without any
    face, every voxel gets half the smallest extent of the array, with its sign.
    """
    inside = inside.astype(bool)
    doubled = tuple(2 * s - 1 for s in inside.shape)
    faces = np.zeros(doubled, dtype=bool)
    for axis in range(inside.ndim):
        ahead = [slice(None)] * inside.ndim
        behind = [slice(None)] * inside.ndim
        ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
        target = [slice(None, None, 2)] * inside.ndim
        target[axis] = slice(1, None, 2)
        faces[tuple(target)] = inside[tuple(ahead)] != inside[tuple(behind)]
    if not faces.any():
        extent = min(s * v for s, v in zip(inside.shape, voxel_size, strict=True)) / 2
        return np.where(inside, extent, -extent).astype(np.float32)
    sampling = tuple(float(v) / 2 for v in voxel_size)
    distances = ndimage.distance_transform_edt(~faces, sampling=sampling)
    distances = np.asarray(distances, dtype=np.float32)[(slice(None, None, 2),) * inside.ndim]
    return np.where(inside, distances, -distances).astype(np.float32)


@attrs.define
class DistancePredictor:
    """Turns binary channels into tanh-normalized signed distances and balanced weights.

    :param channels: the channel names (one gt channel each).
    :param scale_factor: distances (world units) are divided by it before the tanh.
    :param mask_distances: zero the weight where the true distance cannot be known.
    :param clip: the range class fractions are clipped to when balancing.
    :param true_edge_distance: compare with the true distance to the edge of the crop and
        mask; else with half of it, as DaCapo (which samples that distance transform with
        half the voxel size).
    """

    channels: list[str]
    scale_factor: float = 1.0
    mask_distances: bool = True
    clip: tuple[float, float] = (0.05, 0.95)
    true_edge_distance: bool = False

    def _channels(self, gt: Any) -> np.ndarray:
        data = np.asarray(gt.data[...])
        dims = len(gt.voxel_size)
        if data.ndim == dims:
            data = data[np.newaxis]
        if data.ndim != dims + 1 or data.shape[0] != len(self.channels):
            raise ValueError(
                f"gt has shape {data.shape} for {dims} spatial axes, but the distance task has "
                f"{len(self.channels)} channels {self.channels}: give the gt one binary channel "
                "per task channel (e.g. with BinarizeArrayConfig)"
            )
        return data != 0

    def create_target(self, gt: Any) -> InMemoryArray:
        """``tanh(signed distance / scale_factor)``, float32 ``(channels, *spatial)``."""
        inside = self._channels(gt)
        target = np.stack([signed_distances(c, gt.voxel_size) for c in inside])
        normalized = np.tanh(target / np.float32(self.scale_factor)).astype(np.float32)
        return InMemoryArray(normalized, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_weight(self, gt: Any, target: Any, mask: Any | None = None) -> InMemoryArray:
        """Balanced weights, 0 outside the mask and where the distance is not known."""
        inside = self._channels(gt)
        spatial = inside.shape[1:]
        known = np.broadcast_to(mask_data(mask, spatial), inside.shape).copy()
        if self.mask_distances:
            known &= self._distance_known(np.asarray(target.data), known, gt.voxel_size)
        weights = balanced_weights(inside, known, self.clip)
        return InMemoryArray(weights, voxel_size=gt.voxel_size, offset=gt.offset)

    def _distance_known(
        self, target: np.ndarray, known: np.ndarray, voxel_size: Sequence[int]
    ) -> np.ndarray:
        """Where a voxel's distance is smaller than its distance to the edge of ``known`` (half
        of it unless ``true_edge_distance``)."""
        result = np.ones(target.shape, dtype=bool)
        divisor = 1.0 if self.true_edge_distance else 2.0
        sampling = [float(v) / divisor for v in voxel_size]
        for channel, (distance, region) in enumerate(zip(target, known, strict=True)):
            padded = np.pad(region, 1)  # the crop's edge counts as an edge of the region
            edge = ndimage.distance_transform_edt(padded, sampling=sampling)
            edge = np.tanh(np.asarray(edge)[(slice(1, -1),) * region.ndim] / self.scale_factor)
            reach = np.minimum(np.abs(distance) + _EPSILON, _THRESHOLD)
            result[channel] = reach < edge
        return result

    def create_model(self, architecture: Any) -> HeadModel:
        """``architecture`` followed by a 1x1 convolution to one channel per task channel."""
        return HeadModel(architecture, len(self.channels))


@attrs.define
class DistanceLoss:
    """DaCapo's weighted MSE: ``mean((weight * (prediction - target)) ** 2)``."""

    def compute(
        self,
        prediction: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of a batch; without ``weight``, the plain mean squared error."""
        difference = prediction - target
        if weight is not None:
            difference = weight * difference
        return (difference**2).mean()


@attrs.define
class DistanceTask:
    """A built :class:`~dacapo_trainers.reference.DistanceTaskConfig`."""

    predictor: DistancePredictor
    loss: DistanceLoss

    def create_model(self, architecture: Any) -> HeadModel:
        """The model to train: ``predictor.create_model(architecture)`` (as DaCapo's Task)."""
        return self.predictor.create_model(architecture)
