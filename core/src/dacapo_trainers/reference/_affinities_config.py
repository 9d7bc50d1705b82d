"""``AffinitiesTaskConfig``: learn affinities between neighbouring voxels (DaCapo's task)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .._config import TaskConfig

if TYPE_CHECKING:
    from ._affinities import AffinitiesTask


@attrs.define(kw_only=True)
class AffinitiesTaskConfig(TaskConfig):
    """Predict, per offset of a neighbourhood, whether a voxel and its neighbour belong together.

    The target channel of offset ``o`` is 1 at voxel ``p`` where ``p`` and ``p + o`` carry the
    same nonzero label, else 0. Voxels whose neighbour lies outside the array (or outside the
    mask) get weight 0. With ``balance_weights``, positives and negatives of each channel
    carry the same total weight. The model's head is a 1x1 convolution to one channel per
    offset followed by a sigmoid; the loss is a weighted mean squared error.
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
            ),
            loss=AffinitiesLoss(),
        )
