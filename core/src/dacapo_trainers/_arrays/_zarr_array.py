"""The array type every zarr reader returns: a leaf module, imported by the writers and the
node readers alike."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.define(eq=False)
class ZarrArray:
    """An :class:`~dacapo_trainers.Array` over a zarr array; ``data`` reads lazily from disk."""

    data: Any
    voxel_size: tuple[int, ...]
    offset: tuple[int, ...]
    axis_names: tuple[str, ...]

    @property
    def dtype(self) -> Any:
        """The numpy dtype of the array."""
        return self.data.dtype

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the spatial axes, in voxels."""
        return tuple(self.data.shape[-len(self.voxel_size) :])

    def to_numpy(self) -> Any:
        """The whole array, read into memory."""
        import numpy as np

        return np.asarray(self.data[...])
