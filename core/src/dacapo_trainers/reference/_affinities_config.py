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
    same nonzero label, else 0. Voxels whose neighbour lies outside the array (or outside the
    mask) get weight 0. With ``balance_weights``, positives and negatives of each channel
    carry the same total weight: each class weighs ``0.5 / fraction`` with its fraction of the
    known voxels clipped to ``[affs_weight_clipmin, affs_weight_clipmax]`` (DaCapo's rule;
    a channel with one class only weighs 1). The model's head is a 1x1 convolution to one
    channel per offset followed by a sigmoid; the loss is a weighted mean squared error.

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
        """Build the task: an :class:`AffinitiesPredictor` and a weighted MSE loss."""
        from ._affinities import AffinitiesLoss, AffinitiesPredictor, AffinitiesTask

        return AffinitiesTask(
            predictor=AffinitiesPredictor(
                neighborhood=[tuple(int(o) for o in offset) for offset in self.neighborhood],
                balance_weights=self.balance_weights,
                clip=(float(self.affs_weight_clipmin), float(self.affs_weight_clipmax)),
                background_as_object=self.background_as_object,
            ),
            loss=AffinitiesLoss(),
        )
