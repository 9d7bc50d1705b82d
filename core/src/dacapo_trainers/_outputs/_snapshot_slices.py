"""The central slice of each array of a snapshot, read from zarr in either snapshot layout.

Two layouts are read, told apart by where the arrays are:

- DaCapo's: ``{iteration}/volumes/{raw, gt, target, ...}``, sample 0 of the batch, no batch
  axis, a single channel axis dropped;
- the older one: ``{iteration}/{name}`` with the whole batch on a leading ``"b^"`` axis.

Axes are told apart by the ``axis_names`` attribute (``write_array`` writes it): a ``"b^"``
axis is a batch (sample 0 is shown), other names ending in ``^`` are channels, the rest are
spatial. Of the spatial axes, the last two are the image plane and every axis before them
(``z``) is cut at its centre, so only one plane per channel is read from disk. Each array is
cut at *its own* centre: raw may be larger than the prediction (context) or finer (an
upsampling network), so the planes of two arrays need not be the same world plane.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .._arrays._axes import default_axis_names, is_channel_axis
from .._arrays._zarr_io import open_array
from .._contract._protocols import LocalContainerIdentifier

#: The order of the rows of a preview; arrays of other names follow, sorted by name.
KNOWN_ARRAYS = ("raw", "gt", "target", "prediction", "weight", "mask", "gradients")
BATCH_AXIS = "b^"


@attrs.define(frozen=True)
class ArraySlice:
    """One array of a snapshot, cut to one plane per channel.

    :param name: the array's name (``raw``, ``target``, ...).
    :param planes: ``(channels, height, width)``: the plane of each channel.
    :param channels: how many channels the array has (``planes`` may hold fewer).
    :param spatial_shape: the array's spatial shape, in voxels.
    :param voxel_size: the voxel size of each spatial axis (world units).
    :param offset: the world offset of voxel 0 of each spatial axis.
    :param cut: ``(axis name, index)`` of each axis cut at its centre (``("z", 22)``).
    :param dtype: the array's numpy dtype.
    """

    name: str
    planes: Any
    channels: int
    spatial_shape: tuple[int, ...]
    voxel_size: tuple[int, ...]
    offset: tuple[int, ...]
    cut: tuple[tuple[str, int], ...]
    dtype: Any

    def plane_extent(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """World ``(start, end)`` of the plane's two axes (rows, columns)."""
        return (
            (self.offset[-2], self.offset[-2] + self.spatial_shape[-2] * self.voxel_size[-2]),
            (self.offset[-1], self.offset[-1] + self.spatial_shape[-1] * self.voxel_size[-1]),
        )


def snapshot_arrays(container: LocalContainerIdentifier, iteration: int) -> list[str]:
    """Dataset paths (inside the container) of the arrays of snapshot ``iteration``.

    :raises FileNotFoundError: the container has no snapshot ``iteration``.
    """
    import zarr

    group: Any = zarr.open_group(str(container.container), mode="r")  # zarr 2 and 3 alike
    group_path = str(getattr(container, "dataset", "") or "")  # DaCapo's have none
    base = f"{group_path.strip('/')}/{iteration}".strip("/")
    if base not in group:
        raise FileNotFoundError(
            f"no snapshot {iteration} in {container.container} (no group {base!r})"
        )
    snapshot: Any = group[base]
    if "volumes" in snapshot:
        base, snapshot = f"{base}/volumes", snapshot["volumes"]
    names = sorted(snapshot.array_keys(), key=_row_order)
    return [f"{base}/{name}" for name in names]


def _row_order(name: str) -> tuple[int, str]:
    return (KNOWN_ARRAYS.index(name) if name in KNOWN_ARRAYS else len(KNOWN_ARRAYS), name)


def read_snapshot_slices(
    container: LocalContainerIdentifier, iteration: int, max_channels: int = 6
) -> list[ArraySlice]:
    """The central plane of every array of snapshot ``iteration``, in preview row order.

    At most ``max_channels`` channels of an array are read. Arrays with fewer than two spatial
    axes cannot be shown as an image and are left out.
    """
    slices = []
    for path in snapshot_arrays(container, iteration):
        cut = read_central_slice(Path(container.container), path, max_channels)
        if cut is not None:
            slices.append(cut)
    return slices


def read_central_slice(container: Path, path: str, max_channels: int = 6) -> ArraySlice | None:
    """The central plane of array ``path`` in ``container`` (None for fewer than 2D)."""
    import numpy as np

    array = open_array(container, path)
    names = list(array.axis_names)
    if len(names) != array.data.ndim:  # metadata that does not match: trust the shape
        spatial_count = len(array.voxel_size)
        names = [*default_axis_names(array.data.ndim - spatial_count, 0), *names[-spatial_count:]]
    spatial = [i for i, name in enumerate(names) if not is_channel_axis(name)]
    if len(spatial) < 2:
        return None
    channel_axes = [
        i for i, name in enumerate(names) if is_channel_axis(name) and name != BATCH_AXIS
    ]
    shape = array.data.shape
    index: list[Any] = []
    cut: list[tuple[str, int]] = []
    for axis, name in enumerate(names):
        if name == BATCH_AXIS:
            index.append(0)  # sample 0, as DaCapo's layout stores it
        elif axis in spatial[:-2]:
            centre = shape[axis] // 2
            index.append(centre)
            cut.append((name, centre))
        else:
            index.append(slice(None))
    data = np.asarray(array.data[tuple(index)])
    # What indexing left: the channel axes and the two plane axes, in file order.
    left = [axis for axis in range(len(names)) if axis in channel_axes or axis in spatial[-2:]]
    moved = [left.index(axis) for axis in channel_axes]
    data = np.moveaxis(data, moved, list(range(len(moved))))
    planes = data.reshape((-1, *data.shape[-2:]))
    channels = int(np.prod([shape[axis] for axis in channel_axes]))
    spatial_shape = tuple(int(shape[i]) for i in spatial)
    count = len(spatial_shape)
    return ArraySlice(
        name=path.rsplit("/", 1)[-1],
        planes=planes[:max_channels],
        channels=channels,
        spatial_shape=spatial_shape,
        voxel_size=_fit(array.voxel_size, count, 1),
        offset=_fit(array.offset, count, 0),
        cut=tuple(cut),
        dtype=array.dtype,
    )


def _fit(values: Sequence[int], count: int, fill: int) -> tuple[int, ...]:
    """``values`` for the last ``count`` spatial axes (padded in front with ``fill``)."""
    values = tuple(int(v) for v in values)[-count:]
    return (fill,) * (count - len(values)) + values
