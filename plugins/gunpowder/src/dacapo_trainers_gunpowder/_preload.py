"""Which data is read into memory before the workers start: within one budget for all datasets.

The training process reads small arrays once and the forked workers share them (their pages
are never written, so they stay shared). Everything else is read from disk per sample, so
that a dataset costs its metadata, not its data:

* one budget, ``preload_limit_mb``, for all datasets together; arrays are taken in dataset
  order (raw, gt, mask of the first dataset, then of the second, ...) while they fit in what
  is left, so a thousand small crops cost at most the budget;
* of raw, only the *window* samples can reach is read: the region of the mask (gt's without
  one) grown by the model's input size on every side, within the raw. Reads that leave the
  window (augments that grow the request further) go to the raw on disk, so the values are the
  same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from dacapo_trainers import Array, Dataset, InMemoryArray, world_bounds


@attrs.define(eq=False)
class LoadedDataset:
    """A :class:`dacapo_trainers.Dataset` whose arrays may be (partly) read into memory."""

    name: str
    raw: Array
    gt: Array | None
    mask: Array | None
    weight: float
    sample_points: Sequence[Sequence[float]] | None


@attrs.define(eq=False)
class WindowedData:
    """Array data of which one spatial window is in memory.

    Reads whose spatial slices lie inside the window come from :attr:`window`; any other read
    goes to :attr:`source`. Shape and dtype are the source's.

    :param source: the whole array's (lazily read) data.
    :param window: the window's data: the source's channels, then the window's spatial shape.
    :param begin: the window's first voxel in the source's spatial voxel indices.
    """

    source: Any
    window: np.ndarray[Any, Any]
    begin: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.source.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.source.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index: Any) -> Any:
        inside = self._window_index(index)
        if inside is None:
            return self.source[index]
        return self.window[inside]

    def _window_index(self, index: Any) -> tuple[Any, ...] | None:
        """``index`` shifted into the window, or None where it reads outside it."""
        if not isinstance(index, tuple) or len(index) != len(self.shape):
            return None
        dims = len(self.begin)
        lead, spatial = index[: len(index) - dims], index[len(index) - dims :]
        if any(item != slice(None) for item in lead):
            return None
        shifted = []
        for item, first, size in zip(spatial, self.begin, self.window.shape[-dims:], strict=True):
            if not isinstance(item, slice) or item.step not in (None, 1):
                return None
            if item.start is None or item.stop is None:
                return None
            start, stop = int(item.start) - first, int(item.stop) - first
            if start < 0 or stop > size or stop < start:
                return None
            shifted.append(slice(start, stop))
        return (*lead, *shifted)


def _nbytes(shape: Sequence[int], dtype: Any) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


class PreloadBudget:
    """Reads arrays into memory while they fit in ``limit_bytes`` (all datasets together)."""

    def __init__(self, limit_bytes: float) -> None:
        self.left = float(limit_bytes)

    def whole(self, array: Array) -> Array:
        """``array`` in memory if it fits what is left of the budget, else as it is."""
        if isinstance(array.data, np.ndarray):
            return array
        nbytes = _nbytes(array.data.shape, array.dtype)
        if nbytes > self.left:
            return array
        self.left -= nbytes
        return InMemoryArray(
            np.asarray(array.data[...]),
            voxel_size=tuple(array.voxel_size),
            offset=tuple(array.offset),
            axis_names=tuple(array.axis_names),
        )

    def window(self, array: Array, begin: Sequence[int], end: Sequence[int]) -> Array:
        """``array`` with its voxels in the world box ``[begin, end)`` in memory, if they fit
        what is left of the budget (the whole array, where the box covers it)."""
        if isinstance(array.data, np.ndarray):
            return array
        voxel = np.asarray(array.voxel_size, dtype=np.int64)
        array_begin, array_end = (np.asarray(b, dtype=np.int64) for b in world_bounds(array))
        lo = np.maximum(np.floor_divide(np.asarray(begin) - array_begin, voxel), 0)
        hi = np.minimum(
            -np.floor_divide(array_begin - np.asarray(end), voxel),
            (array_end - array_begin) // voxel,
        )
        if np.any(hi <= lo):
            return array
        if np.all(lo == 0) and np.all(hi == (array_end - array_begin) // voxel):
            return self.whole(array)
        shape = tuple(int(s) for s in array.data.shape)
        channels = shape[: len(shape) - len(voxel)]
        nbytes = _nbytes((*channels, *(hi - lo)), array.dtype)
        if nbytes > self.left:
            return array
        self.left -= nbytes
        index = (
            *(slice(None) for _ in channels),
            *(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True)),
        )
        data = WindowedData(array.data, np.asarray(array.data[index]), tuple(int(v) for v in lo))
        return InMemoryArray(
            data,
            voxel_size=tuple(array.voxel_size),
            offset=tuple(array.offset),
            axis_names=tuple(array.axis_names),
        )


def preload_datasets(
    datasets: Sequence[Dataset], limit_bytes: float, input_size: Sequence[int]
) -> list[Dataset]:
    """``datasets`` with what fits in ``limit_bytes`` read into memory (module docstring).

    :param input_size: the model's input size (world units): how far beyond the mask's (or
        gt's) region a sample's raw reaches, without augments.
    """
    budget = PreloadBudget(limit_bytes)
    loaded: list[Dataset] = []
    for dataset in datasets:
        region = dataset.mask if dataset.mask is not None else dataset.gt
        raw = dataset.raw
        if region is not None:
            begin, end = world_bounds(region)
            grow = np.asarray(input_size, dtype=np.int64)
            low = [int(b) for b in np.asarray(begin) - grow]
            high = [int(e) for e in np.asarray(end) + grow]
            raw = budget.window(raw, low, high)
        else:
            raw = budget.whole(raw)
        loaded.append(
            LoadedDataset(
                name=dataset.name,
                raw=raw,
                gt=budget.whole(dataset.gt) if dataset.gt is not None else None,
                mask=budget.whole(dataset.mask) if dataset.mask is not None else None,
                weight=dataset.weight,
                sample_points=dataset.sample_points,
            )
        )
    return loaded
