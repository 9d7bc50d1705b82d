"""``DistanceTaskConfig``: learn signed distances to object boundaries (DaCapo's task)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from dacapo_trainers import TaskConfig

if TYPE_CHECKING:
    from ._distance import DistanceTask


@attrs.define(kw_only=True)
class DistanceTaskConfig(TaskConfig):
    """Predict, per channel, the tanh-normalized signed distance to the object boundary.

    The gt holds one binary channel per entry of ``channels`` (e.g. from a
    :class:`BinarizeArrayConfig`; a single channel may also come without a channel axis). The
    target of a channel is ``tanh(d / scale_factor)``, ``d`` the distance in world units from a
    voxel centre to the nearest face between inside and outside voxels, positive inside and
    negative outside. The weight balances inside and outside per channel (each weighs
    ``0.5 / fraction``, the fraction clipped to ``[clipmin, clipmax]``), is 0 outside the mask
    and, with ``mask_distances``, 0 where the true distance cannot be known: where the voxel's
    normalized distance (plus 0.05, capped at 0.8) reaches its normalized distance to the edge
    of the crop and mask, taken as half the true one as in DaCapo (``true_edge_distance``,
    ours: the true one, so fewer voxels whose distance is known are dropped). The head is a 1x1
    convolution, no activation; the loss is DaCapo's weighted mean squared error
    ``mean((weight * (prediction - target)) ** 2)``.

    ``clip_distance`` and ``tol_distance`` only matter to DaCapo's evaluation; they are read
    and kept.
    """

    channels: list[str] = attrs.field(metadata={"help_text": "A list of channel names."})
    clip_distance: float = attrs.field(
        metadata={"help_text": "Maximum distance to consider for false positives/negatives."}
    )
    tol_distance: float = attrs.field(
        metadata={"help_text": "Tolerance distance for counting false positives/negatives."}
    )
    scale_factor: float = attrs.field(
        default=1.0,
        metadata={
            "help_text": "The amount by which to scale distances (world units) before "
            "applying a tanh normalization."
        },
    )
    mask_distances: bool = attrs.field(
        default=True,
        metadata={
            "help_text": "Mask out voxels whose distance to the object boundary cannot be "
            "known (nearer to the crop boundary than to the object boundary)."
        },
    )
    true_edge_distance: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Ours: with mask_distances, compare with the true distance to the "
            "edge of the crop and mask. False: with half of it, as DaCapo (which drops more "
            "voxels whose distance is known)."
        },
    )
    clipmin: float = attrs.field(
        default=0.05, metadata={"help_text": "The smallest class fraction used for balancing."}
    )
    clipmax: float = attrs.field(
        default=0.95, metadata={"help_text": "The largest class fraction used for balancing."}
    )

    @channels.validator
    def _check_channels(self, attribute: attrs.Attribute[list[str]], value: list[str]) -> None:
        if not value:
            raise ValueError("channels must name at least one channel")

    @scale_factor.validator
    def _check_scale_factor(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"scale_factor must be positive, got {value}")

    @clipmax.validator
    def _check_clip(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 < self.clipmin <= value <= 1:
            raise ValueError(
                f"clipmax and clipmin must satisfy 0 < clipmin <= clipmax <= 1, got {value} "
                f"and {self.clipmin}"
            )

    def build(self) -> DistanceTask:
        """Build the task: a :class:`DistancePredictor` and DaCapo's weighted MSE loss."""
        from ._distance import DistanceLoss, DistancePredictor, DistanceTask

        return DistanceTask(
            predictor=DistancePredictor(
                channels=list(self.channels),
                scale_factor=float(self.scale_factor),
                mask_distances=self.mask_distances,
                clip=(float(self.clipmin), float(self.clipmax)),
                true_edge_distance=self.true_edge_distance,
            ),
            loss=DistanceLoss(),
        )
