"""ArraySource: provides one array from a :class:`dacapo_trainers.Array`, zero-padded."""

from __future__ import annotations

from typing import Any

import gunpowder as gp
import numpy as np

from dacapo_trainers import Array


class ArraySource(gp.BatchProvider):
    """Provides ``key`` from ``array`` (numpy in memory, or zarr read per request).

    The provided ROI is unbounded: requested voxels outside the array (or outside ``clip``)
    are ``0`` in the array's own value space (gunpowder's ``Pad`` with infinite size, as
    DaCapo pads raw, gt and mask, folded into the source so that a crop is written once).
    Values are only cast to ``dtype`` (when given), never rescaled: raw is provided as the
    dataset gives it, as float32 (DaCapo's ``torch.as_tensor(raw).float()``), and every
    dataset provides the same dtype.

    :param key: the array key to provide.
    :param array: the source array; leading axes beyond ``len(array.voxel_size)`` are
        channels and are kept.
    :param interpolatable: whether augments may interpolate it (raw) or must not (labels).
    :param dtype: the provided dtype (default: the array's).
    :param clip: a world ROI outside which the array is treated as zero (``clip_raw``).
    """

    def __init__(
        self,
        key: gp.ArrayKey,
        array: Array,
        *,
        interpolatable: bool,
        dtype: Any = None,
        clip: gp.Roi | None = None,
    ) -> None:
        self.key = key
        self.array = array
        self.interpolatable = interpolatable
        self.voxel_size = gp.Coordinate(array.voxel_size)
        shape = tuple(array.data.shape)
        self.dims = len(self.voxel_size)
        self.channel_shape = shape[: len(shape) - self.dims]
        self.array_roi = gp.Roi(
            gp.Coordinate(array.offset), gp.Coordinate(shape[-self.dims :]) * self.voxel_size
        )
        # where data is read; zero elsewhere
        self.data_roi = self.array_roi
        if clip is not None:
            # DaCapo crops raw to gt's ROI grown to raw's grid
            self.data_roi = self.data_roi.intersect(clip.snap_to_grid(self.voxel_size, "grow"))
        self.dtype = np.dtype(dtype if dtype is not None else array.dtype)

    def set_seeds(self, request: gp.BatchRequest) -> None:
        """Nothing random here; leave the global generators alone."""

    def setup(self) -> None:
        unbounded = gp.Roi((None,) * self.dims, (None,) * self.dims)
        self.provides(
            self.key,
            gp.ArraySpec(
                roi=unbounded,
                voxel_size=self.voxel_size,
                interpolatable=self.interpolatable,
                dtype=self.dtype,
            ),
        )

    def provide(self, request: gp.BatchRequest) -> gp.Batch:
        spec = self.spec[self.key].copy()
        spec.roi = request[self.key].roi
        shape = spec.roi.shape / self.voxel_size
        data = np.zeros(self.channel_shape + tuple(shape), dtype=self.dtype)
        inside = spec.roi.intersect(self.data_roi)
        if not inside.empty:
            source = (inside - self.array_roi.offset) / self.voxel_size
            target = (inside - spec.roi.offset) / self.voxel_size
            channels = (slice(None),) * len(self.channel_shape)
            data[channels + target.to_slices()] = self.array.data[channels + source.to_slices()]
        batch = gp.Batch()
        batch[self.key] = gp.Array(data, spec)
        return batch
