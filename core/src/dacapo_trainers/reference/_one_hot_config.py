"""``OneHotTaskConfig``: semantic segmentation into named classes (DaCapo's task)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from dacapo_trainers import TaskConfig

if TYPE_CHECKING:
    from ._one_hot import OneHotTask


@attrs.define(kw_only=True)
class OneHotTaskConfig(TaskConfig):
    """Classify every voxel into one of ``classes``; the gt holds class indices.

    Label ``k`` of the gt is class ``classes[k]`` (so label 0 is the first class, typically
    background). As in DaCapo 0.3.5: the target is one-hot (one channel per class), the weight
    is all ones (the mask is not used), the head is a convolution (``kernel_size``; null: 3,
    DaCapo's value) to one logit channel per class, and the loss is
    ``sum(|logits - one_hot|)`` over the batch.

    ``masked_cross_entropy`` is ours: the class index as target, a weight of 1 inside the mask
    and 0 outside, and the per-voxel cross-entropy times the weight, averaged.
    """

    classes: list[str] = attrs.field(
        metadata={
            "help_text": "The class names; label k of the gt is classes[k] (label 0 is the "
            "first class, e.g. background)."
        }
    )

    kernel_size: int | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The kernel size of the head convolution (valid: a kernel of k "
            "shrinks the output by k - 1 voxels); null: 3, as DaCapo 0.3.5 (which announced "
            "that it would become 1)."
        },
    )
    masked_cross_entropy: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Ours: train a cross-entropy on class indices, weighted by the mask "
            "(masked-out voxels do not count), averaged over voxels. False: DaCapo's "
            "sum(|logits - one_hot|), mask unused."
        },
    )

    @kernel_size.validator
    def _check_kernel_size(self, attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"kernel_size must be at least 1, got {value}")

    @classes.validator
    def _check_classes(self, attribute: attrs.Attribute[list[str]], value: list[str]) -> None:
        if len(value) < 2:
            raise ValueError(f"classes must name at least 2 classes, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"classes must be unique, got {value}")

    def build(self) -> OneHotTask:
        """Build the task: a :class:`OneHotPredictor` and its loss (DaCapo's, or with
        ``masked_cross_entropy`` a masked cross-entropy)."""
        from ._one_hot import MaskedCrossEntropyLoss, OneHotLoss, OneHotPredictor, OneHotTask

        predictor = OneHotPredictor(
            classes=list(self.classes),
            kernel_size=3 if self.kernel_size is None else self.kernel_size,
            class_indices=self.masked_cross_entropy,
        )
        loss = MaskedCrossEntropyLoss() if self.masked_cross_entropy else OneHotLoss()
        return OneHotTask(predictor=predictor, loss=loss)
