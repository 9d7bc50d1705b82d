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


def label_data(array: Any, task: str) -> np.ndarray:
    """``array``'s spatial data as labels: integers, or floats that hold whole numbers only.

    A float gt with fractional values (0.5 where labels were interpolated, a probability map)
    is no label image: the task would split objects along rounding edges without a word.

    :raises ValueError: the gt holds fractional values, with one of them and what to do.
    """
    labels = spatial_data(array, "gt")
    if np.issubdtype(labels.dtype, np.floating):
        fractional = labels[np.isfinite(labels) & (labels != np.round(labels))]
        if fractional.size or not np.all(np.isfinite(labels)):
            example = fractional.flat[0] if fractional.size else "NaN or inf"
            raise ValueError(
                f"gt is {labels.dtype} with values that are not whole numbers (e.g. {example}), "
                f"but the {task} task needs integer labels: give it the label array (not a "
                "probability or an interpolated one), or binarize it (BinarizeArrayConfig)"
            )
    return labels


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
