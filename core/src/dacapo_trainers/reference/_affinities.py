"""Affinities: target, weight, head and loss (imports torch; loaded by ``build()``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch

from dacapo_trainers import InMemoryArray

from ._head import HeadModel
from ._labels import label_data, mask_data


def _shift_slices(
    offset: Sequence[int], shape: Sequence[int]
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices selecting the voxels whose neighbour at ``offset`` is inside, and those neighbours."""
    here, there = [], []
    for o, size in zip(offset, shape, strict=True):
        start, stop = max(0, -o), size - max(0, o)
        here.append(slice(start, max(start, stop)))
        there.append(slice(start + o, max(start, stop) + o))
    return tuple(here), tuple(there)


def compute_affinities(
    labels: np.ndarray,
    neighborhood: Sequence[Sequence[int]],
    mask: np.ndarray,
    *,
    mask_neighbours: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Affinities of ``labels`` and where they are known, both shaped ``(offsets, *shape)``.

    An affinity is known where its neighbour lies inside the array and the voxel inside the
    mask (DaCapo's rule); with ``mask_neighbours``, the neighbour must be inside the mask too.
    """
    affinities = np.zeros((len(neighborhood), *labels.shape), dtype=np.float32)
    known = np.zeros((len(neighborhood), *labels.shape), dtype=bool)
    for channel, offset in enumerate(neighborhood):
        here, there = _shift_slices(offset, labels.shape)
        affinities[channel][here] = (labels[here] == labels[there]) & (labels[here] != 0)
        known[channel][here] = mask[here] & mask[there] if mask_neighbours else mask[here]
    return affinities, known


def neighbour_inside(neighborhood: Sequence[Sequence[int]], shape: Sequence[int]) -> np.ndarray:
    """Where each offset's neighbour lies inside an array of ``shape``: ``(offsets, *shape)``."""
    inside = np.zeros((len(neighborhood), *shape), dtype=bool)
    for channel, offset in enumerate(neighborhood):
        inside[channel][_shift_slices(offset, shape)[0]] = True
    return inside


def balanced_weights(
    positive: np.ndarray, known: np.ndarray, clip: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """Per-channel class-balanced weights, shaped like ``positive``.

    In each channel (axis 0), each class among the ``known`` voxels weighs ``0.5 / f`` per
    voxel, ``f`` being its fraction of the known voxels clipped to ``clip`` (DaCapo's
    balancing). Unclipped, positives and negatives each carry half of the channel's total
    weight, the number of known voxels (the mean weight over known voxels is 1). If one class
    is absent, the other gets weight 1 per voxel. Unknown voxels get 0.
    """
    axes = tuple(range(1, positive.ndim))
    pos = positive & known
    neg = ~positive & known
    num_pos = pos.sum(axis=axes).astype(np.float64)
    num_neg = neg.sum(axis=axes).astype(np.float64)
    total = np.maximum(num_pos + num_neg, 1)
    both = (num_pos > 0) & (num_neg > 0)
    low, high = max(clip[0], 1e-12), clip[1]
    weight_pos = np.where(both, 0.5 / np.clip(num_pos / total, low, high), 1.0)
    weight_neg = np.where(both, 0.5 / np.clip(num_neg / total, low, high), 1.0)
    shape = (-1,) + (1,) * (positive.ndim - 1)
    weights = pos * weight_pos.reshape(shape) + neg * weight_neg.reshape(shape)
    return weights.astype(np.float32)


@attrs.define
class AffinitiesPredictor:
    """Turns instance labels into affinities and their weights; adds the head.

    :param neighborhood: the offsets, one target channel each.
    :param balance_weights: balance positive and negative weights per channel.
    :param clip: the range class fractions are clipped to when balancing.
    :param background_as_object: label 0 is one more object (background affinities are 1).
    :param mask_neighbours: an affinity's weight also needs its neighbour inside the mask.
    :param sigmoid_head: end the model with a sigmoid (probabilities); else it gives logits.
    """

    neighborhood: list[tuple[int, ...]]
    balance_weights: bool = True
    clip: tuple[float, float] = (0.0, 1.0)
    background_as_object: bool = False
    mask_neighbours: bool = False
    sigmoid_head: bool = False

    @property
    def num_channels(self) -> int:
        """The number of target channels: one per offset."""
        return len(self.neighborhood)

    def _labels(self, gt: Any) -> np.ndarray:
        labels = label_data(gt, "affinities")
        if labels.ndim != len(self.neighborhood[0]):
            raise ValueError(
                f"the neighborhood has {len(self.neighborhood[0])}-entry offsets, but gt has "
                f"{labels.ndim} spatial axes"
            )
        if self.background_as_object:  # DaCapo shifts every label by one
            labels = labels.astype(np.int64) + 1
        return labels

    def create_target(self, gt: Any) -> InMemoryArray:
        """Affinities of ``gt`` as float32 ``(offsets, *spatial)``, on the geometry of ``gt``."""
        labels = self._labels(gt)
        affinities, _ = compute_affinities(
            labels, self.neighborhood, np.ones(labels.shape, dtype=bool)
        )
        return InMemoryArray(affinities, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_weight(self, gt: Any, target: Any, mask: Any | None = None) -> InMemoryArray:
        """Weights as float32 ``(offsets, *spatial)``: 0 where the affinity is unknown.

        Unknown means the neighbour lies outside the array, or the voxel (with
        ``mask_neighbours``: the voxel or its neighbour) lies outside ``mask``. Known voxels
        get 1, or class-balanced weights (see :func:`balanced_weights`) with
        ``balance_weights``.
        """
        labels = self._labels(gt)
        mask_array = mask_data(mask, labels.shape)
        _, known = compute_affinities(
            labels, self.neighborhood, mask_array, mask_neighbours=self.mask_neighbours
        )
        if self.balance_weights:
            positive = np.asarray(target.data[...]) > 0.5
            weights = balanced_weights(positive, known, self.clip)
        else:
            weights = known.astype(np.float32)
        return InMemoryArray(weights, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_model(self, architecture: Any) -> HeadModel:
        """``architecture``, then a 1x1 convolution to one channel per offset: logits in
        training and a sigmoid in eval mode, as DaCapo's model; with ``sigmoid_head``, a
        sigmoid always.

        :raises ValueError: an offset reaches as far as the model's output shape (no voxel of
            an output crop would have that neighbour inside the crop: nothing to learn).
        """
        if self.sigmoid_head:
            model = HeadModel(architecture, self.num_channels, torch.nn.Sigmoid())
        else:  # DaCapo's: logits in training, probabilities in eval mode
            model = HeadModel(architecture, self.num_channels, eval_activation=torch.nn.Sigmoid())
        shape = tuple(int(s) for s in model.output_shape)
        for offset in self.neighborhood:
            if len(offset) == len(shape) and any(
                abs(o) >= s for o, s in zip(offset, shape, strict=True)
            ):
                raise ValueError(
                    f"the affinities neighborhood offset {list(offset)} reaches past the "
                    f"model's output shape {list(shape)}, so no voxel of a training crop has "
                    "that neighbour and there is nothing to learn; use offsets smaller than "
                    "the output shape, or a larger input_shape"
                )
        return model


@attrs.define
class AffinitiesLoss:
    """DaCapo's loss: binary cross-entropy on logits, unweighted, averaged.

    The mean runs over the voxels whose affinity is known in the crop (the neighbour lies
    inside it): DaCapo reads the gt beyond the crop and knows every affinity, the trainers
    here hand the predictor the crop only. ``weight`` is not applied (as DaCapo without lsds).
    """

    neighborhood: list[tuple[int, ...]]
    _inside: dict[tuple[tuple[int, ...], str], torch.Tensor] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )

    def _neighbour_inside(self, prediction: torch.Tensor) -> torch.Tensor:
        shape = tuple(int(s) for s in prediction.shape[2:])
        key = (shape, str(prediction.device))
        if key not in self._inside:
            inside = neighbour_inside(self.neighborhood, shape)
            self._inside[key] = torch.from_numpy(inside).to(prediction.device)
        return self._inside[key]

    def compute(
        self,
        prediction: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of a batch of logits ``(batch, offsets, *spatial)``; ``weight`` is unused."""
        losses = torch.nn.functional.binary_cross_entropy_with_logits(
            prediction.float(), target.float(), reduction="none"
        )
        inside = self._neighbour_inside(prediction)
        known = inside.sum() * prediction.shape[0]
        return (losses * inside).sum() / known.clamp(min=1)


@attrs.define
class WeightedSquaredErrorLoss:
    """Weighted mean squared error: ``mean(weight * (prediction - target) ** 2)``."""

    def compute(
        self,
        prediction: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of a batch; without ``weight``, the plain mean squared error."""
        squared = (prediction - target) ** 2
        if weight is not None:
            squared = weight * squared
        return squared.mean()


@attrs.define
class AffinitiesTask:
    """A built :class:`~dacapo_trainers.reference.AffinitiesTaskConfig`."""

    predictor: AffinitiesPredictor
    loss: AffinitiesLoss | WeightedSquaredErrorLoss

    def create_model(self, architecture: Any) -> HeadModel:
        """The model to train: ``predictor.create_model(architecture)`` (as DaCapo's Task)."""
        return self.predictor.create_model(architecture)
