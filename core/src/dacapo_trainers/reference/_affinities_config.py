"""``AffinitiesTaskConfig``: learn affinities between neighbouring voxels (DaCapo's task)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from dacapo_trainers import TaskConfig

if TYPE_CHECKING:
    from ._affinities import AffinitiesTask


@attrs.define(kw_only=True)
class AffinitiesTaskConfig(TaskConfig):
    """Predict, per offset of a neighbourhood, whether a voxel and its neighbour belong together.

    The target channel of offset ``o`` is 1 at voxel ``p`` where ``p`` and ``p + o`` carry the
    same nonzero label, else 0. As in DaCapo 0.3.5, the model ends in a 1x1 convolution to one
    channel per offset and gives logits (a sigmoid turns them into probabilities at
    prediction), and the loss is the binary cross-entropy on the logits, unweighted and
    averaged over the voxels whose neighbour lies inside the crop.

    The weight (in snapshots, and in the loss with ``weighted_mse``) is 0 where the neighbour
    lies outside the crop or the voxel outside the mask (with ``mask_neighbours``, also where
    the neighbour lies outside the mask). With ``balance_weights``, positives and negatives of
    each channel carry the same total weight: each class weighs ``0.5 / fraction`` with its
    fraction of the known voxels clipped to ``[affs_weight_clipmin, affs_weight_clipmax]``
    (DaCapo's rule; a channel with one class only weighs 1).

    ``weighted_mse`` is ours: a sigmoid in the head and a weighted mean squared error, so
    that the mask, the crop's edge and the class balance take effect in training.

    DaCapo's fields load: ``background_as_object`` is honoured; ``lsds`` (local shape
    descriptors) is not implemented and is refused when true; the other lsd fields only
    matter with ``lsds``.
    """

    neighborhood: list[list[int]] = attrs.field(
        default=attrs.Factory(lambda: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        metadata={
            "help_text": "The offsets (in voxels) to the neighbours an affinity is predicted "
            "for, one target channel each. 3 entries per offset for 3D data, 2 for 2D."
        },
    )
    balance_weights: bool = attrs.field(
        default=True,
        metadata={
            "help_text": "Weight positive and negative affinities so that each class carries "
            "half of the total weight of each channel."
        },
    )
    weighted_mse: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Ours: end the model in a sigmoid and train the weighted mean squared "
            "error of the probabilities, so that the weights (mask, crop edge, class balance) "
            "take effect. False: DaCapo's unweighted binary cross-entropy on logits."
        },
    )
    mask_neighbours: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Ours: an affinity weighs 0 unless its neighbour is inside the mask "
            "too (its label there is not known). False: DaCapo's rule, only the voxel itself "
            "must be inside the mask."
        },
    )

    lsds: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "DaCapo's auxiliary local shape descriptors; not implemented here, "
            "must be false."
        },
    )
    num_lsd_voxels: int = attrs.field(
        default=10,
        metadata={"help_text": "DaCapo's lsd field (only used with lsds)."},
    )
    downsample_lsds: int = attrs.field(
        default=1,
        metadata={"help_text": "DaCapo's lsd field (only used with lsds)."},
    )
    lsds_to_affs_weight_ratio: float = attrs.field(
        default=1.0,
        metadata={"help_text": "DaCapo's lsd field (only used with lsds)."},
    )
    affs_weight_clipmin: float = attrs.field(
        default=0.05,
        metadata={
            "help_text": "The smallest class fraction used to balance the weights (a rarer "
            "class weighs at most 0.5 / affs_weight_clipmin)."
        },
    )
    affs_weight_clipmax: float = attrs.field(
        default=0.95,
        metadata={"help_text": "The largest class fraction used to balance the weights."},
    )
    lsd_weight_clipmin: float = attrs.field(
        default=0.05,
        metadata={"help_text": "DaCapo's lsd field (only used with lsds)."},
    )
    lsd_weight_clipmax: float = attrs.field(
        default=0.95,
        metadata={"help_text": "DaCapo's lsd field (only used with lsds)."},
    )
    background_as_object: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Treat the background (label 0) as one more object: background "
            "voxels then have affinity 1 with each other."
        },
    )

    @lsds.validator
    def _check_lsds(self, attribute: attrs.Attribute[bool], value: bool) -> None:
        if value:
            raise ValueError(
                "lsds is not implemented in dacapo-trainers (local shape descriptors need "
                "DaCapo's lsd extractor); set lsds: false"
            )

    @affs_weight_clipmax.validator
    def _check_clip(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 < self.affs_weight_clipmin <= value <= 1:
            raise ValueError(
                "affs_weight_clipmin and affs_weight_clipmax must satisfy 0 < min <= max <= 1, "
                f"got {self.affs_weight_clipmin} and {value}"
            )

    @neighborhood.validator
    def _check_neighborhood(
        self, attribute: attrs.Attribute[list[list[int]]], value: list[list[int]]
    ) -> None:
        if not value:
            raise ValueError("neighborhood must have at least one offset")
        dims = {len(offset) for offset in value}
        if len(dims) != 1 or dims.pop() not in (2, 3):
            raise ValueError(
                f"neighborhood offsets must all have 2 or all have 3 entries, got {value}"
            )
        for offset in value:
            if not any(offset):
                raise ValueError(f"neighborhood offset {list(offset)} must not be zero")

    def build(self) -> AffinitiesTask:
        """Build the task: an :class:`AffinitiesPredictor` and its loss (DaCapo's binary
        cross-entropy on logits, or with ``weighted_mse`` a weighted squared error)."""
        from ._affinities import (
            AffinitiesLoss,
            AffinitiesPredictor,
            AffinitiesTask,
            WeightedSquaredErrorLoss,
        )

        neighborhood = [tuple(int(o) for o in offset) for offset in self.neighborhood]
        return AffinitiesTask(
            predictor=AffinitiesPredictor(
                neighborhood=neighborhood,
                balance_weights=self.balance_weights,
                clip=(float(self.affs_weight_clipmin), float(self.affs_weight_clipmax)),
                background_as_object=self.background_as_object,
                mask_neighbours=self.mask_neighbours,
                sigmoid_head=self.weighted_mse,
            ),
            loss=WeightedSquaredErrorLoss()
            if self.weighted_mse
            else AffinitiesLoss(neighborhood=neighborhood),
        )
