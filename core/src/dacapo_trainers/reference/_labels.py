"""Reading label, mask and target arrays into numpy (shared by the reference tasks)."""

from __future__ import annotations

from typing import Any

import numpy as np


def spatial_data(array: Any, what: str) -> np.ndarray:
    """The data of ``array`` as numpy with only its spatial axes.

    Leading axes of size 1 (a singleton channel) are dropped; other leading axes are an error.
    """
    data = np.asarray(array.data[...])
    dims = len(array.voxel_size)
    extra = data.shape[: data.ndim - dims]
    if any(size != 1 for size in extra):
        raise ValueError(
            f"{what} must have a single channel, got shape {data.shape} for {dims} spatial axes"
        )
    return data.reshape(data.shape[data.ndim - dims :])


def mask_data(mask: Any | None, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as a boolean spatial array (nonzero: inside), all True when ``mask`` is None.

    A mask with channel axes (DaCapo gives a dataset without a mask ones of gt's whole shape,
    channels included) is inside where every channel is nonzero.
    """
    if mask is None:
        return np.ones(shape, dtype=bool)
    data = np.asarray(mask.data[...]) != 0
    dims = len(mask.voxel_size)
    while data.ndim > dims:
        data = data.all(axis=0)
    if data.shape != shape:
        raise ValueError(f"mask has shape {data.shape}, but gt has shape {shape}")
    return data
