"""Writing one training batch as a snapshot: raw, gt, target, weight, prediction, mask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dacapo_trainers import LocalContainerIdentifier, write_array

from ._pipeline import Geometry

#: The arrays a snapshot holds, in the order they are written.
SNAPSHOT_ARRAYS = ("raw", "gt", "target", "weight", "prediction", "mask")


def write_snapshot(
    container: LocalContainerIdentifier,
    iteration: int,
    geometry: Geometry,
    arrays: Mapping[str, Any],
) -> None:
    """Write the batch ``arrays`` to ``container`` as ``"{iteration}/{name}"``.

    Each array is the whole batch: batch axis first (``"b^"``), then channel axes
    (``"c^"``), then the spatial axes, with the voxel size. The offset is the world offset of
    the first sample's output crop (of its input crop for ``raw``), taken before augments:
    augmented samples are not in world orientation, and the other samples come from
    elsewhere (``arrays["location"]`` holds each sample's shift).
    """
    voxel_size = geometry.voxel_size
    dims = len(voxel_size)
    shift = np.asarray(arrays["location"][0], dtype=np.int64)
    raw_offset = [int(s) for s in shift]
    output_offset = [int(s + o) for s, o in zip(shift, geometry.output_offset, strict=True)]
    spatial_names = ["z", "y", "x"][-dims:] if dims <= 3 else [f"d{i}" for i in range(dims)]
    for name in SNAPSHOT_ARRAYS:
        data = np.asarray(arrays[name])
        if data.dtype == bool:
            data = data.astype(np.uint8)
        axis_names = ["b^"] + ["c^"] * (data.ndim - dims - 1) + spatial_names
        write_array(
            container,
            f"{iteration}/{name}",
            data,
            voxel_size=voxel_size if name == "raw" else geometry.output_voxel_size,
            offset=raw_offset if name == "raw" else output_offset,
            axis_names=axis_names,
        )
