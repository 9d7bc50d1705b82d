"""Reading and writing zarr arrays with geometry metadata; works with zarr 2.18 and zarr 3.

Metadata follows funlib.persistence (``voxel_size``, ``offset``, ``axis_names``, ``units``) and
adds ``resolution`` (neuroglancer's and DaCapo's name for the voxel size), so napari,
neuroglancer, funlib and DaCapo all place the array correctly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from .._contract._protocols import LocalContainerIdentifier
from ._axes import default_axis_names
from ._locations import RemotePath, container_text, local_path, refuse_remote_output
from ._zarr_array import ZarrArray as ZarrArray  # re-exported: the public name lives here
from ._zarr_nodes import open_node


@attrs.define(frozen=True)
class ZarrContainer:
    """A :class:`~dacapo_trainers.LocalContainerIdentifier`: a zarr container and a group in it."""

    container: Path = attrs.field(converter=Path)
    dataset: str = ""

    @container.validator
    def _check_local(self, attribute: attrs.Attribute[Path], value: Path) -> None:
        refuse_remote_output(value, "zarr container")

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
    its ``dataset`` group, when it has one) or a container path. Leading non-spatial axes
    (channels, batch) are named ``"c^"`` and the spatial ones ``z, y, x`` (the rule of
    :func:`~dacapo_trainers.default_axis_names`) unless ``axis_names`` says otherwise.
    Returns the container path.
    """
    import numpy as np

    data = np.asarray(data)
    refuse_remote_output(
        container if isinstance(container, (str, Path)) else container.container, "zarr container"
    )
    if isinstance(container, (str, Path)):
        container_path, dataset_path = Path(container), name
    else:
        container_path = Path(container.container)
        # DaCapo's container identifiers have no dataset: write at the container's root.
        group_path = str(getattr(container, "dataset", "") or "")
        dataset_path = ZarrContainer(container_path, group_path).path_of(name)
    spatial = len(voxel_size)
    if offset is None:
        offset = (0,) * spatial
    if axis_names is None:
        axis_names = default_axis_names(data.ndim, spatial)
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


def open_array(
    container: str | os.PathLike[str],
    dataset: str,
    storage_options: Mapping[str, Any] | None = None,
) -> ZarrArray:
    """Open zarr array ``dataset`` in ``container`` with its world geometry.

    ``container`` is a local path or a URL that fsspec reads (``s3://``, ``gs://``,
    ``http(s)://``; needs ``pip install 'dacapo-trainers[remote]'``), opened with
    ``storage_options`` (e.g. ``{"anon": True}``; ignored for local paths) on top of bounded
    timeouts and retries. A remote array reads lazily, per requested crop, through a chunk cache
    that each process keeps (and a forked data worker opens anew).

    Opens what funlib.persistence's ``prepare_ds`` writes (no root group needed), what
    :func:`write_array` writes, and OME-NGFF multiscale images (v0.4 and v0.5): ``dataset``
    may name the multiscale group (its first, finest scale is opened) or one of its scale
    arrays. zarr format 2 and 3 are read (format 3 needs zarr>=3).

    Geometry of a plain array comes from its attributes: ``voxel_size`` (or ``resolution``;
    default 1 per spatial axis), ``offset`` in world units (default 0) and ``axis_names``
    (channel axes end in ``^`` and come first; without the attribute,
    :func:`~dacapo_trainers.default_axis_names`). Spatial axes are the last ``len(voxel_size)``
    (else those ``axis_names`` does not mark as channels; else the last 3). Multiscale images
    take voxel size and offset from their ``coordinateTransformations``; micrometre scales that
    are not whole numbers are converted to nanometres.

    :raises ValueError: nothing usable is at that path, or a remote container cannot be read
        (unreachable, missing bucket or key, access denied); the one-line message names the
        container, the array and what to do.
    """
    local = local_path(container)
    if local is not None:
        return open_node(local, dataset)
    remote = RemotePath.open(container_text(container), storage_options)
    remote.check_root()
    return open_node(remote, dataset)
