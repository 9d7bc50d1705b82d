"""One-hot classification: target, weight, head and loss (imports torch; loaded by ``build()``)."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch

from dacapo_trainers import InMemoryArray

from ._head import HeadModel
from ._labels import label_data, mask_data, spatial_data


@attrs.define
class OneHotPredictor:
    """Turns class labels into a target and a weight; adds a logits head.

    :param classes: the class names; label ``k`` is ``classes[k]``.
    :param kernel_size: the kernel size of the head convolution.
    :param class_indices: the target is the class index (one channel) and the weight the mask;
        else (DaCapo's) the target is one-hot (one channel per class) and the weight all ones.
    """

    classes: list[str]
    kernel_size: int = 3
    class_indices: bool = False

    def _labels(self, gt: Any) -> np.ndarray:
        labels = label_data(gt, "one-hot")
        if labels.size:
            low, high = labels.min(), labels.max()
            if low < 0 or high >= len(self.classes):
                raise ValueError(
                    f"gt holds labels {low} to {high}, but there are only {len(self.classes)} "
                    f"classes {self.classes} (labels 0 to {len(self.classes) - 1})"
                )
        return labels

    def create_target(self, gt: Any) -> InMemoryArray:
        """One-hot float32 ``(classes, *spatial)``; with ``class_indices``, the class index of
        every voxel as float32 ``(1, *spatial)``.

        :raises ValueError: if a label is negative or not below ``len(classes)``.
        """
        labels = self._labels(gt)
        if self.class_indices:
            target = labels.astype(np.float32)[np.newaxis]
        else:
            classes = np.arange(len(self.classes)).reshape((-1,) + (1,) * labels.ndim)
            target = (labels[np.newaxis] == classes).astype(np.float32)
        return InMemoryArray(target, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_weight(self, gt: Any, target: Any, mask: Any | None = None) -> InMemoryArray:
        """Ones shaped like ``target`` (DaCapo's: the mask is not used); with
        ``class_indices``, 1 inside ``mask`` (everywhere without one) and 0 outside, float32
        ``(1, *spatial)``."""
        if not self.class_indices:
            ones = np.ones(np.asarray(target.data).shape, dtype=np.float32)
            return InMemoryArray(ones, voxel_size=gt.voxel_size, offset=gt.offset)
        labels = spatial_data(gt, "gt")
        weight = mask_data(mask, labels.shape).astype(np.float32)[np.newaxis]
        return InMemoryArray(weight, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_model(self, architecture: Any) -> HeadModel:
        """``architecture`` followed by a convolution to one logit channel per class."""
        return HeadModel(architecture, len(self.classes), kernel_size=self.kernel_size)


@attrs.define
class OneHotLoss:
    """DaCapo 0.3.5's one-hot loss: ``sum(|prediction - target|)`` over the whole batch.

    ``prediction`` holds logits ``(batch, classes, *spatial)``, ``target`` the one-hot
    target of the same shape; ``weight`` is not used (as in DaCapo).
    """

    def compute(
        self,
        prediction: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of a batch."""
        return (prediction.float() - target.float()).abs().sum()


@attrs.define
class MaskedCrossEntropyLoss:
    """Weighted cross-entropy: the mean over voxels of ``weight * cross_entropy``.

    ``prediction`` holds logits ``(batch, classes, *spatial)``; ``target`` holds class indices
    ``(batch, 1, *spatial)`` (or without the channel axis), in any dtype; ``weight`` has the
    shape of ``target``.
    """

    def compute(
        self,
        prediction: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of a batch; without ``weight``, the plain mean cross-entropy."""
        if target.dim() == prediction.dim():
            target = target[:, 0]
        indices = target.round().long() if target.is_floating_point() else target.long()
        loss = torch.nn.functional.cross_entropy(prediction, indices, reduction="none")
        if weight is not None:
            if weight.dim() == prediction.dim():
                weight = weight[:, 0]
            loss = weight * loss
        return loss.mean()


@attrs.define
class OneHotTask:
    """A built :class:`~dacapo_trainers.reference.OneHotTaskConfig`."""

    predictor: OneHotPredictor
    loss: OneHotLoss | MaskedCrossEntropyLoss

    def create_model(self, architecture: Any) -> HeadModel:
        """The model to train: ``predictor.create_model(architecture)`` (as DaCapo's Task)."""
        return self.predictor.create_model(architecture)
