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
    background). The target is the class index as float32, one channel; the weight is 1
    inside the mask and 0 outside. The model's head is a convolution (``kernel_size``,
    default 1) to one channel per class (logits, no activation); the loss is a per-voxel
    cross-entropy times the weight, averaged.
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
            "shrinks the output by k - 1 voxels); null: 1 (DaCapo 0.3.5 took 3 and announced 1)."
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
        """Build the task: a :class:`OneHotPredictor` and a weighted cross-entropy loss."""
        from ._one_hot import OneHotLoss, OneHotPredictor, OneHotTask

        predictor = OneHotPredictor(classes=list(self.classes), kernel_size=self.kernel_size or 1)
        return OneHotTask(predictor=predictor, loss=OneHotLoss())
