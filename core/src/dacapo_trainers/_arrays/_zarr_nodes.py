"""Finding and opening one zarr array on disk, with its geometry; every failure a ValueError.

What is at a path is read from the metadata files themselves (``.zarray``/``.zgroup`` of zarr
format 2, ``zarr.json`` of format 3), so that the answer, and the error, is the same with
zarr 2 and zarr 3, and a container written without a root group (funlib.persistence's
``prepare_ds``) opens like any other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from ._axes import SPATIAL_AXES, default_axis_names
from ._chunk_reads import CheckedReads
from ._locations import Location, RemotePath
from ._remote import RemoteAccessError
from ._remote_data import RemoteData
from ._zarr_array import ZarrArray

NodeKind = Literal["array", "group"]
_MICROMETRE = {"micrometer", "micrometre", "micron", "um", "µm"}


def _fail(container: Location, dataset: str, problem: str, fix: str) -> ValueError:
    where = f"array {dataset!r} in zarr container {str(container)!r}"
    return ValueError(f"cannot open {where}: {problem}; {fix}")


def _metadata(path: Location) -> tuple[NodeKind | None, int | None, dict[str, Any]]:
    """(kind, zarr format, attributes) of the node at ``path``; kind None when none is there."""
    v3 = path / "zarr.json"
    if v3.is_file():
        document = _read_json(v3)
        kind = document.get("node_type")
        attributes = document.get("attributes") or {}
        return (kind if kind in ("array", "group") else None), 3, dict(attributes)
    attributes_file = path / ".zattrs"
    attributes = _read_json(attributes_file) if attributes_file.is_file() else {}
    if (path / ".zarray").is_file():
        return "array", 2, attributes
    if (path / ".zgroup").is_file():
        return "group", 2, attributes
    return None, None, attributes


def _read_json(path: Location) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"cannot read zarr metadata {str(path)!r}: {error}; the container is damaged"
        ) from None
    return document if isinstance(document, dict) else {}


def _children(path: Location) -> list[str]:
    """Names of the zarr arrays and groups directly inside ``path``."""
    if not path.is_dir():
        return []
    return sorted(p.name for p in path.iterdir() if p.is_dir() and _metadata(p)[0] is not None)


def _listing(path: Location) -> str:
    children = _children(path)
    return f"it holds {', '.join(children)}" if children else "it holds no zarr array"


def _multiscales(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The first OME-NGFF multiscale image of a group's attributes (v0.4 or v0.5), or None."""
    ome = attributes.get("ome")
    found = ome.get("multiscales") if isinstance(ome, dict) else attributes.get("multiscales")
    if isinstance(found, list) and found and isinstance(found[0], dict):
        return found[0]
    return None


def open_node(container: Location, dataset: str) -> ZarrArray:
    """The array ``dataset`` in ``container``, or the finest scale of a multiscale group."""
    dataset = dataset.strip("/")
    node = container / dataset if dataset else container
    if not container.exists():
        raise _fail(
            container,
            dataset,
            "the container does not exist",
            "check the URL"
            if isinstance(container, RemotePath)
            else "check the path (relative paths are relative to the working directory)",
        )
    kind, zarr_format, attributes = _metadata(node)
    if kind is None:
        if not node.exists():
            parent = node.parent if node != container else container
            problem = "there is nothing at that path" + (
                f" ({_listing(parent)})" if parent.is_dir() else ""
            )
            raise _fail(container, dataset, problem, "name an existing array of the container")
        if _children(node):  # a folder of arrays without group metadata (as prepare_ds leaves)
            raise _fail(
                container,
                dataset,
                f"it is a group, not an array ({_listing(node)})",
                "name one of its arrays",
            )
        raise _fail(
            container,
            dataset,
            "it is not a zarr array or group (no .zarray, .zgroup or zarr.json)",
            "point to a zarr container and an array in it",
        )
    _check_format(container, dataset, zarr_format)
    if kind == "group":
        multiscales = _multiscales(attributes)
        if multiscales is None:
            raise _fail(
                container,
                dataset,
                f"it is a group, not an array ({_listing(node)})",
                "name one of its arrays, or an OME-NGFF multiscale group",
            )
        scale_path = _first_scale(container, dataset, multiscales)
        return _open_scale(container, dataset, node, scale_path, multiscales)
    if node != container:
        parent_kind, _, parent_attributes = _metadata(node.parent)
        multiscales = _multiscales(parent_attributes) if parent_kind == "group" else None
        if multiscales is not None and node.name in _scale_paths(multiscales):
            return _open_scale(container, dataset, node.parent, node.name, multiscales)
    array = _open_zarr_array(container, dataset, node)
    voxel_size, offset, axis_names = _attribute_geometry(container, dataset, attributes, array.ndim)
    data = CheckedReads(array, str(node))
    return ZarrArray(data=data, voxel_size=voxel_size, offset=offset, axis_names=axis_names)


def _check_format(container: Location, dataset: str, zarr_format: int | None) -> None:
    import zarr

    major = int(zarr.__version__.split(".")[0])
    if zarr_format == 3 and major < 3:
        raise _fail(
            container,
            dataset,
            f"it is stored in zarr format 3, which zarr {zarr.__version__} cannot read",
            "install zarr>=3 (Python 3.11 or newer), or convert the container to zarr format 2",
        )


def _open_zarr_array(container: Location, dataset: str, node: Location) -> Any:
    import zarr

    try:
        if isinstance(container, RemotePath) and isinstance(node, RemotePath):
            relative = node.url[len(container.url) :].strip("/")
            return RemoteData.open(container.url, relative, container.options)
        return zarr.open_array(str(node), mode="r")
    except RemoteAccessError:
        raise
    except Exception as error:  # any zarr/codec failure on a node whose metadata we found
        message = str(error).strip().splitlines()
        raise _fail(
            container,
            dataset,
            f"zarr cannot open it ({type(error).__name__}: {message[0] if message else ''})",
            "check that the container is complete and its compressor is installed",
        ) from error


def _scale_paths(multiscales: dict[str, Any]) -> list[str]:
    datasets = multiscales.get("datasets")
    if not isinstance(datasets, list):
        return []
    return [str(d.get("path")) for d in datasets if isinstance(d, dict) and "path" in d]


def _first_scale(container: Location, dataset: str, multiscales: dict[str, Any]) -> str:
    paths = _scale_paths(multiscales)
    if not paths:
        raise _fail(
            container,
            dataset,
            "its OME-NGFF multiscales metadata lists no datasets",
            "fix the metadata, or name a scale array directly",
        )
    return paths[0]


def _open_scale(
    container: Location,
    dataset: str,
    group: Location,
    scale_path: str,
    multiscales: dict[str, Any],
) -> ZarrArray:
    node = group / scale_path
    kind, zarr_format, _ = _metadata(node)
    if kind != "array":
        raise _fail(
            container,
            dataset,
            f"its multiscales metadata names scale {scale_path!r}, which is not an array",
            "fix the metadata, or name an existing scale array directly",
        )
    _check_format(container, dataset, zarr_format)
    array = _open_zarr_array(container, dataset, node)
    voxel_size, offset, axis_names = _ome_geometry(
        container, dataset, multiscales, scale_path, array.ndim
    )
    data = CheckedReads(array, str(node))
    return ZarrArray(data=data, voxel_size=voxel_size, offset=offset, axis_names=axis_names)


def _numbers(value: Any) -> list[float] | None:
    if not isinstance(value, (list, tuple)):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    if not all(math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]


def _whole(values: Sequence[float]) -> tuple[int, ...] | None:
    rounded = tuple(round(v) for v in values)
    if all(abs(v - r) < 1e-6 for v, r in zip(values, rounded, strict=True)):
        return rounded
    return None


def _attribute_geometry(
    container: Location, dataset: str, attributes: dict[str, Any], ndim: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
    """Voxel size, offset and axis names from funlib/DaCapo-style array attributes."""
    key = "voxel_size" if "voxel_size" in attributes else "resolution"
    names = attributes.get("axis_names")
    names = list(names) if isinstance(names, list) and len(names) == ndim else None
    if key in attributes:
        numbers = _numbers(attributes[key])
        voxel_size = _whole(numbers) if numbers is not None else None
        if voxel_size is None or not voxel_size or any(v < 1 for v in voxel_size):
            raise _fail(
                container,
                dataset,
                f"its {key} attribute is {attributes[key]!r}, not a list of positive whole numbers",
                f"fix the attribute (e.g. {key}: [8, 8, 8], in world units such as nm)",
            )
        spatial = len(voxel_size)
    else:
        spatial = (
            sum(1 for n in names if not str(n).endswith("^")) if names is not None else min(3, ndim)
        )
        voxel_size = (1,) * spatial
    if spatial > ndim:
        raise _fail(
            container,
            dataset,
            f"its {key} has {spatial} entries but the array has only {ndim} axes",
            f"fix the attribute: give one {key} entry per spatial axis",
        )
    offset: tuple[int, ...] = (0,) * spatial
    if "offset" in attributes:
        numbers = _numbers(attributes["offset"])
        whole = _whole(numbers) if numbers is not None else None
        if whole is None or len(whole) != spatial:
            raise _fail(
                container,
                dataset,
                f"its offset attribute is {attributes['offset']!r}, not {spatial} whole numbers",
                "fix the attribute (the world position of voxel 0, one entry per spatial axis)",
            )
        offset = whole
    axis_names = names if names is not None else default_axis_names(ndim, spatial)
    return voxel_size, offset, tuple(str(n) for n in axis_names)


def _ome_geometry(
    container: Location,
    dataset: str,
    multiscales: dict[str, Any],
    scale_path: str,
    ndim: int,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
    """Voxel size, offset and axis names of one scale of an OME-NGFF multiscale image."""

    def bad(problem: str) -> ValueError:
        return _fail(
            container,
            dataset,
            f"its OME-NGFF multiscales metadata {problem}",
            "fix the metadata (axes and coordinateTransformations, one entry per axis)",
        )

    axes = multiscales.get("axes")
    if not isinstance(axes, list) or len(axes) != ndim:
        raise bad(f"has {len(axes) if isinstance(axes, list) else 'no'} axes for {ndim} dims")
    names = [str(a.get("name", "")) if isinstance(a, dict) else str(a) for a in axes]
    types = [
        a.get("type") if isinstance(a, dict) else None for a in axes
    ]  # v0.3 axes are plain names
    space = [
        t == "space" or (t is None and n in SPATIAL_AXES) for t, n in zip(types, names, strict=True)
    ]
    if not any(space) or space != sorted(space):
        raise bad(f"has axes {names}: spatial axes must come last, after channel axes")
    units = [a.get("unit") if isinstance(a, dict) else None for a in axes]
    entry = next(
        d
        for d in multiscales.get("datasets", [])
        if isinstance(d, dict) and d.get("path") == scale_path
    )
    scale, translation = [1.0] * ndim, [0.0] * ndim
    for level in (
        entry.get("coordinateTransformations"),
        multiscales.get("coordinateTransformations"),
    ):
        if level is not None and not isinstance(level, list):
            raise bad(f"has coordinateTransformations {level!r}, not a list of transformations")
        for transform in level or []:
            kind = transform.get("type") if isinstance(transform, dict) else None
            values = _numbers(transform.get(kind)) if kind in ("scale", "translation") else None
            if kind in ("scale", "translation") and (values is None or len(values) != ndim):
                raise bad(f"has a {kind} transformation {transform.get(kind)!r} for {ndim} axes")
            if kind == "scale" and values is not None:
                translation = [t * s for t, s in zip(translation, values, strict=True)]
                scale = [a * s for a, s in zip(scale, values, strict=True)]
            elif kind == "translation" and values is not None:
                translation = [t + v for t, v in zip(translation, values, strict=True)]
    spatial = [i for i, s in enumerate(space) if s]
    voxel = [scale[i] for i in spatial]
    factor = 1.0
    if _whole(voxel) is None and all(str(units[i]).lower() in _MICROMETRE for i in spatial):
        factor = 1000.0  # micrometres to nanometres: whole numbers where they were not
    voxel_size = _whole([v * factor for v in voxel])
    offset = _whole([translation[i] * factor for i in spatial])
    if voxel_size is None or any(v < 1 for v in voxel_size):
        raise bad(f"gives scale {scale_path!r} the voxel size {voxel}, not whole world units")
    if offset is None:
        raise bad(
            f"gives scale {scale_path!r} the offset {[translation[i] for i in spatial]}, not "
            "whole world units"
        )
    axis_names = [
        n if s else (n if n.endswith("^") else f"{n}^") for n, s in zip(names, space, strict=True)
    ]
    return voxel_size, offset, tuple(axis_names)
