"""``sample_strategy``: what DaCapo main's strategies ask of the location sampler.

DaCapo main builds each strategy from gunpowder nodes (``RandomLocation`` with an integral
mask, ``Reject``, sample points as a graph); here each is a setting of the exact location
sampler (:mod:`._locations`): which mask it consults, whether it places the centre on the
dataset's sample points, and whether one masked voxel of the centre box suffices or all must
be masked.
"""

from __future__ import annotations

import attrs
import numpy as np

from ._trainer_config import DACAPO_0_3_5


@attrs.frozen
class CentreRule:
    """What the location sampler of one dataset checks (see :func:`centre_rule`)."""

    mask: np.ndarray | None
    sample_points: np.ndarray | None
    all_masked: bool


def centre_rule(
    strategy: str | None,
    dataset_name: str,
    mask: np.ndarray | None,
    sample_points: np.ndarray | None,
) -> CentreRule:
    """The rule of ``strategy`` for a dataset with ``mask`` (spatial, or None for none) and
    ``sample_points`` (or None).

    * ``"dacapo-0.3.5"``: some voxel of the centre box masked; the points where there are any.
    * ``"integral_mask"``, ``"reject"``: every voxel of the centre box masked; no points.
    * ``"sample_points"``: the points, mask not consulted.
    * None: the centre anywhere inside the mask's region, mask not consulted; no points.

    :raises ValueError: ``"sample_points"`` for a dataset without sample points.
    """
    if strategy == DACAPO_0_3_5:
        return CentreRule(mask, sample_points, all_masked=False)
    if strategy == "sample_points":
        if sample_points is None:
            raise ValueError(
                f"dataset {dataset_name!r} has no sample_points, which sample_strategy "
                "'sample_points' draws from ($.trainer_config.sample_strategy); give the "
                "dataset sample_points or choose another strategy"
            )
        return CentreRule(None, sample_points, all_masked=False)
    if strategy is None:
        return CentreRule(None, None, all_masked=False)
    return CentreRule(mask, None, all_masked=True)  # integral_mask, reject
