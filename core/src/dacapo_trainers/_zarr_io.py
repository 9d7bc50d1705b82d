"""Reading and writing zarr arrays with geometry metadata; works with zarr 2.18 and zarr 3.

Metadata follows funlib.persistence (``voxel_size``, ``offset``, ``axis_names``, ``units``) and
adds ``resolution`` (neuroglancer's and DaCapo's name for the voxel size), so napari,
neuroglancer, funlib and DaCapo all place the array correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from ._protocols import LocalContainerIdentifier


@attrs.define(frozen=True)
class ZarrContainer:
    """A :class:`~dacapo_trainers.LocalContainerIdentifier`: a zarr container and a group in it."""

    container: Path = attrs.field(converter=Path)
    dataset: str = ""

    def path_of(self, name: str) -> str:
        """The dataset path of array ``name`` inside this container's group."""
        return f"{self.dataset.strip('/')}/{name}".strip("/")


def _open_group(container: Path, mode: Literal["r", "a"]) -> Any:
    import zarr

    return zarr.open_group(str(container), mode=mode)


def write_array(
    container: LocalContainerIdentifier | str | Path,
    name: str,
    data: Any,
    *,
    voxel_size: Sequence[int],
    offset: Sequence[int] | None = None,
    axis_names: Sequence[str] | None = None,
    units: Sequence[str] | None = None,
    chunks: Sequence[int] | None = None,
) -> Path:
    """Write ``data`` (a numpy array) as zarr array ``name`` with its geometry; overwrite.

    ``container`` is a :class:`~dacapo_trainers.LocalContainerIdentifier` (the array goes into
    its ``dataset`` group) or a container path. Leading non-spatial axes (channels, batch)
    are named ``"c^"`` unless ``axis_names`` says otherwise. Returns the container path.
    """
    import numpy as np

    data = np.asarray(data)
    if isinstance(container, (str, Path)):
        container_path, dataset_path = Path(container), name
    else:
        container_path = Path(container.container)
        dataset_path = f"{container.dataset.strip('/')}/{name}".strip("/")
    spatial = len(voxel_size)
    if offset is None:
        offset = (0,) * spatial
    if axis_names is None:
        axis_names = ["c^"] * (data.ndim - spatial) + ["z", "y", "x"][-spatial:]
    if units is None:
        units = ["nm"] * spatial
    group = _open_group(container_path, "a")
    if dataset_path in group:
        del group[dataset_path]
    chunk_shape = tuple(chunks) if chunks is not None else tuple(min(s, 64) for s in data.shape)
    if hasattr(group, "create_array"):  # zarr 3
        array = group.create_array(
            dataset_path, shape=data.shape, dtype=data.dtype, chunks=chunk_shape
        )
        array[...] = data
    else:  # zarr 2
        array = group.create_dataset(dataset_path, data=data, chunks=chunk_shape)
    array.attrs.update(
        {
            "voxel_size": [int(v) for v in voxel_size],
            "resolution": [int(v) for v in voxel_size],
            "offset": [int(o) for o in offset],
            "axis_names": list(axis_names),
            "units": list(units),
        }
    )
    return container_path


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


def open_array(container: str | Path, dataset: str) -> ZarrArray:
    """Open zarr array ``dataset`` in ``container`` with the geometry from its attributes.

    ``voxel_size`` is read from ``voxel_size`` or ``resolution`` (default 1 per spatial axis),
    ``offset`` from ``offset`` (default 0); spatial axes are the last 3 (2 for 2D data with
    2-entry metadata).
    """
    group = _open_group(Path(container), "r")
    array = group[dataset]
    attributes = dict(array.attrs)
    voxel_size = attributes.get("voxel_size", attributes.get("resolution"))
    if voxel_size is None:
        spatial = min(3, array.ndim)
        voxel_size = [1] * spatial
    spatial = len(voxel_size)
    offset = attributes.get("offset", [0] * spatial)
    axis_names = attributes.get(
        "axis_names", ["c^"] * (array.ndim - spatial) + ["z", "y", "x"][-spatial:]
    )
    return ZarrArray(
        data=array,
        voxel_size=tuple(int(v) for v in voxel_size),
        offset=tuple(int(o) for o in offset),
        axis_names=tuple(axis_names),
    )
