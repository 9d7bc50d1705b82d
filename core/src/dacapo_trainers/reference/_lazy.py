"""Lazy arrays: data computed from a source per requested slice, never read whole.

A :class:`LazyData` looks like a read-only numpy array to the trainers (``shape``, ``dtype``,
``ndim``, ``data[key]``, ``np.asarray(data)``); indexing reads only the source region the key
needs and applies the transformation to it. Transformations nest (crop, then intensities).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

#: Turns the source block read for a request into the block to return.
Transform = Callable[[Any], Any]


def normalize_key(key: Any, shape: Sequence[int]) -> tuple[slice | int, ...]:
    """``key`` as one basic index per axis (ints and step-1 slices with explicit bounds).

    :raises IndexError: for keys that are not basic indexing (arrays, masks, steps).
    """
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (len(shape) - (len(key) - 1))
        key = key[:at] + fill + key[at + 1 :]
    if len(key) > len(shape):
        raise IndexError(f"too many indices ({len(key)}) for an array of {len(shape)} axes")
    key = key + (slice(None),) * (len(shape) - len(key))
    normalized: list[slice | int] = []
    for k, size in zip(key, shape, strict=True):
        if isinstance(k, slice):
            start, stop, step = k.indices(size)
            if step != 1:
                raise IndexError("lazy arrays support only slices with step 1")
            normalized.append(slice(start, max(start, stop)))
        elif isinstance(k, int) or hasattr(k, "__index__"):
            index = int(k)
            if not -size <= index < size:
                raise IndexError(f"index {index} is out of bounds for an axis of size {size}")
            normalized.append(index % size)
        else:
            raise IndexError(f"lazy arrays support only ints and slices, got {k!r}")
    return tuple(normalized)


@attrs.define(eq=False)
class LazyData:
    """Array-like data: ``transform(source[key])``, elementwise (same shape as the source).

    :param source: the array-like to read from (a zarr array, another LazyData, numpy).
    :param transform: maps a block of the source to a block of the result.
    :param dtype: the dtype of the result.
    """

    source: Any
    transform: Transform
    dtype: Any

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the data (the source's)."""
        return tuple(int(s) for s in self.source.shape)

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self.shape)

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        block = np.asarray(self.source[key])
        return np.asarray(self.transform(block)).astype(self.dtype, copy=False)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        data = self[...]
        return data if dtype is None else np.asarray(data, dtype=dtype)

    def __len__(self) -> int:
        return self.shape[0]


@attrs.define(eq=False)
class CroppedData:
    """Array-like view of a box of ``source``: ``start`` and ``shape`` per axis (voxels)."""

    source: Any
    start: tuple[int, ...]
    shape: tuple[int, ...]

    @property
    def dtype(self) -> Any:
        """The source's dtype."""
        return self.source.dtype

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self.shape)

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        source_key = []
        for k, start in zip(normalize_key(key, self.shape), self.start, strict=True):
            source_key.append(
                k + start if isinstance(k, int) else slice(k.start + start, k.stop + start)
            )
        return np.asarray(self.source[tuple(source_key)])

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        data = self[...]
        return data if dtype is None else np.asarray(data, dtype=dtype)

    def __len__(self) -> int:
        return self.shape[0]


@attrs.define(eq=False)
class ChannelsData:
    """Array-like data with a channel axis in front of a channel-free source.

    ``channel_fns[i](block)`` computes channel ``i`` from a block of the source; a request
    reads the source block once for all requested channels.
    """

    source: Any
    channel_fns: Sequence[Transform]
    dtype: Any

    @property
    def shape(self) -> tuple[int, ...]:
        """``(channels, *source shape)``."""
        return (len(self.channel_fns), *(int(s) for s in self.source.shape))

    @property
    def ndim(self) -> int:
        """The number of axes (the source's plus one)."""
        return len(self.shape)

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        channel, *spatial = normalize_key(key, self.shape)
        block = np.asarray(self.source[tuple(spatial)])
        if isinstance(channel, int):
            return np.asarray(self.channel_fns[channel](block)).astype(self.dtype, copy=False)
        selected = self.channel_fns[channel]
        out = np.empty((len(selected), *block.shape), dtype=self.dtype)
        for i, function in enumerate(selected):
            out[i] = function(block)
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        data = self[...]
        return data if dtype is None else np.asarray(data, dtype=dtype)

    def __len__(self) -> int:
        return self.shape[0]


def _int_tuple(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _str_tuple(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


@attrs.define(eq=False)
class LazyArray:
    """An :class:`~dacapo_trainers.Array` whose ``data`` is a lazy array-like (or zarr)."""

    data: Any
    voxel_size: tuple[int, ...] = attrs.field(converter=_int_tuple)
    offset: tuple[int, ...] = attrs.field(converter=_int_tuple)
    axis_names: tuple[str, ...] = attrs.field(converter=_str_tuple)

    @property
    def dtype(self) -> Any:
        """The dtype of :attr:`data`."""
        import numpy as np

        return np.dtype(self.data.dtype)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the spatial axes, in voxels."""
        return tuple(int(s) for s in self.data.shape[-len(self.voxel_size) :])


def intensity_map(
    source_range: Sequence[float], target_range: Sequence[float] = (0.0, 1.0)
) -> Transform:
    """The linear map of ``source_range`` onto ``target_range`` (no clipping), as float64."""
    low, high = float(source_range[0]), float(source_range[1])
    new_low, new_high = float(target_range[0]), float(target_range[1])

    def transform(block: Any) -> Any:
        import numpy as np

        # (x - low) / (high - low) first: with the target [0, 1] this is DaCapo's formula.
        unit = (np.asarray(block, dtype=np.float64) - low) / (high - low)
        return unit * (new_high - new_low) + new_low

    return transform
