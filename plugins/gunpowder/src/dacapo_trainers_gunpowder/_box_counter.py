"""Means of an array over boxes through an integral image: the crop rules of the location
sampler (``gt_min_reject``, ``min_masked_fraction``, ``min_gt_fraction``). Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

#: Arrays above this many voxels are summed in blocks before their integral image is taken.
MAX_INTEGRAL_VOXELS = 2**27


def spatial_nonzero(data: Any, dims: int) -> np.ndarray:
    """``data`` read whole as a boolean array of its spatial axes: nonzero in any channel.

    Channels are collapsed by their maximum, as DaCapo's ``CopyMask(drop_channels=True)``.
    """
    array = np.asarray(data[...])
    nonzero: np.ndarray = np.asarray(array != 0)
    while nonzero.ndim > dims:
        nonzero = np.asarray(nonzero.any(axis=0))
    return nonzero


def block_sums(values: np.ndarray, block: int, dtype: Any) -> np.ndarray:
    """Sums of ``values`` over blocks of ``block`` voxels per axis (the last block padded)."""
    dims = values.ndim
    if block == 1:
        return values.astype(dtype)
    padded_shape = tuple(-(-s // block) * block for s in values.shape)
    padded = np.zeros(padded_shape, dtype=dtype)
    padded[tuple(slice(0, s) for s in values.shape)] = values
    reshaped = padded.reshape(tuple(v for s in padded_shape for v in (s // block, block)))
    return reshaped.sum(axis=tuple(range(1, 2 * dims, 2)), dtype=dtype)


@attrs.define(eq=False)
class BoxCounter:
    """Means of an array over world boxes, through an integral image.

    With ``values`` False the array counted is "nonzero in some channel" (a fraction of the
    box); with ``values`` True it is the array's values summed over channels, divided by the
    number of channels (the mean over the box and its channels, as ``ndarray.mean``). Voxels
    outside the array count as zero. ``begin`` and ``voxel_size`` are in world units. Arrays
    larger than :data:`MAX_INTEGRAL_VOXELS` are first summed in blocks of ``block`` voxels per
    axis, which makes means at box borders approximate (to one block).
    """

    integral: np.ndarray
    begin: np.ndarray
    voxel_size: np.ndarray
    block: int
    shape: np.ndarray  # in voxels
    channels: int = 1
    values: bool = False

    @classmethod
    def from_array(
        cls, data: Any, voxel_size: Sequence[int], offset: Any, *, values: bool = False
    ) -> BoxCounter:
        dims = len(voxel_size)
        array = np.asarray(data[...])
        channels = int(np.prod(array.shape[: array.ndim - dims], dtype=np.int64))
        dtype: Any
        if values:
            counted = array.reshape((-1, *array.shape[array.ndim - dims :])).sum(
                axis=0, dtype=np.float64
            )
            dtype = np.float64
        else:
            counted = spatial_nonzero(array, dims)
            dtype = np.uint32 if counted.size < 2**32 else np.uint64
        block = 1
        while counted.size / block**dims > MAX_INTEGRAL_VOXELS:
            block *= 2
        inner = block_sums(counted, block, dtype)
        for axis in range(dims):
            inner = np.cumsum(inner, axis=axis, dtype=dtype)
        integral = np.zeros(tuple(s + 1 for s in inner.shape), dtype=dtype)
        integral[(slice(1, None),) * dims] = inner
        return cls(
            integral=integral,
            begin=np.asarray(offset, dtype=np.int64),
            voxel_size=np.asarray(voxel_size, dtype=np.int64),
            block=block,
            shape=np.array(counted.shape),
            channels=max(channels, 1) if values else 1,
            values=values,
        )

    def means(self, begins: np.ndarray, size: np.ndarray) -> np.ndarray:
        """The mean over each box ``[begin, begin + size)`` (world units).

        :param begins: ``(n, dims)`` box begins.
        :param size: ``(dims,)`` box size, the same for all boxes.
        """
        unit = self.voxel_size * self.block
        upper = np.array(self.integral.shape) - 1
        lo = np.clip(np.floor((begins - self.begin) / unit).astype(np.int64), 0, upper)
        hi = np.clip(np.floor((begins + size - self.begin) / unit).astype(np.int64), 0, upper)
        dims = begins.shape[1]
        total = np.zeros(len(begins), dtype=np.float64)
        for corner in np.ndindex((2,) * dims):
            index = tuple(np.where(c, hi[:, d], lo[:, d]) for d, c in enumerate(corner))
            sign = -1.0 if (dims - sum(corner)) % 2 else 1.0
            total += sign * self.integral[index].astype(np.float64)
        volume = float(np.prod(size // self.voxel_size)) * self.channels
        if self.values:
            return total / volume
        return np.minimum(total / volume, 1.0)
