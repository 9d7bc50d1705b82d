"""DaCapo's array configs: a zarr array, and arrays transformed from another (lazily).

Names, fields and defaults are DaCapo 0.3.5's, so its stored configs load unchanged.
Importing this module imports neither numpy nor zarr; ``build()`` does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import attrs

from dacapo_trainers import ArrayConfig, default_axis_names, open_array

from ._lazy import ChannelsData, CroppedData, LazyArray, LazyData, intensity_map

if TYPE_CHECKING:
    from dacapo_trainers import Array


def container_text(value: str | os.PathLike[str]) -> str:
    """A container path or URL as text: ``str`` keeps a URL's ``//`` (DaCapo's UPath too)."""
    return value if isinstance(value, str) else str(value)


def _spatial_dims(array: Array) -> int:
    return len(array.voxel_size)


def _channel_dims(array: Array) -> int:
    return len(array.data.shape) - _spatial_dims(array)


@attrs.define(kw_only=True)
class ZarrArrayConfig(ArrayConfig):
    """An array in a zarr container (DaCapo's ``ZarrArrayConfig``).

    Opened with :func:`dacapo_trainers.open_array`: containers without a root group (as
    funlib.persistence writes them), OME-NGFF multiscale groups, zarr format 2 and 3, local or
    at a URL (``s3://``, ``gs://``, ``http(s)://``, with ``storage_options``). As in
    DaCapo 0.3.5, ``snap_to_grid`` and ``_axes`` do not change how the array is read (the
    run says so at start when they are set), and ``mode`` is ignored: training only reads.
    """

    file_name: str = attrs.field(
        converter=container_text,
        metadata={
            "help_text": "The file name of the zarr container: a local path, or an s3://, "
            "gs:// or http(s):// URL (read-only; needs dacapo-trainers[remote])."
        },
    )
    dataset: str = attrs.field(
        metadata={
            "help_text": "The name of your dataset. May include '/' characters for nested "
            "hierarchies."
        }
    )
    snap_to_grid: list[int] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "Accepted for DaCapo's files; not used (DaCapo 0.3.5 does not use it "
            "either)."
        },
    )
    _axes: list[str] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "Accepted for DaCapo's files; not used: axis names come from the "
            "array's metadata (as in DaCapo 0.3.5)."
        },
    )
    mode: str | None = attrs.field(
        default="a",
        metadata={"help_text": "Accepted for DaCapo's files; arrays are only read in training."},
    )
    storage_options: dict[str, Any] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "For a URL file_name: options of its fsspec file system, e.g. "
            "{anon: true} for a public S3 bucket; null: credentials and endpoint found the "
            "standard way (AWS_* variables, profiles). Not a DaCapo field."
        },
    )
    ome_metadata: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "DaCapo main's: whether dataset names a scale of an OME-NGFF "
            "multiscale group. Accepted; not needed: such a scale opens with its "
            "multiscales metadata either way."
        },
    )

    @property
    def axes(self) -> list[str] | None:
        """DaCapo's ``_axes`` field (stored, not used)."""
        return self._axes

    def _start_notes(self) -> list[str]:
        unused = [
            name
            for name, value in (("snap_to_grid", self.snap_to_grid), ("_axes", self._axes))
            if value is not None
        ]
        if not unused:
            return []
        return [
            f"{type(self).__name__} {self.name!r}: {' and '.join(unused)} not used (as in "
            "DaCapo 0.3.5): geometry and axes come from the array's metadata"
        ]

    def build(self) -> Array:
        """Open the array.

        :raises ValueError: the container or the array cannot be opened (the message says
            why and what to do).
        """
        try:
            return open_array(self.file_name, self.dataset, self.storage_options)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {error}") from error


@attrs.define(kw_only=True)
class IntensitiesArrayConfig(ArrayConfig):
    """Raw intensities mapped linearly: ``(x - min) / (max - min)`` (DaCapo's formula).

    Values outside ``[min, max]`` are not clipped. The result is float32.
    """

    source_array_config: ArrayConfig = attrs.field(
        metadata={"help_text": "The array whose intensities are normalized."}
    )
    min: float = attrs.field(metadata={"help_text": "The minimum intensity in your data."})
    max: float = attrs.field(metadata={"help_text": "The maximum intensity in your data."})

    @max.validator
    def _check_max(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > self.min:
            raise ValueError(f"max must be greater than min ({self.min}), got {value}")

    def build(self) -> Array:
        """The source array, intensities mapped lazily (per requested crop)."""
        source = self.source_array_config.build()
        return LazyArray(
            data=LazyData(source.data, intensity_map((self.min, self.max)), dtype="float32"),
            voxel_size=source.voxel_size,
            offset=source.offset,
            axis_names=source.axis_names,
        )


def _membership(ids: list[int], background: int) -> Any:
    def channel(block: Any) -> Any:
        import numpy as np

        return np.isin(block, ids) if ids else block != background

    return channel


@attrs.define(kw_only=True)
class BinarizeArrayConfig(ArrayConfig):
    """One binary channel per group of label ids (DaCapo's ``BinarizeArrayConfig``).

    Channel ``i`` is 1 where the label is one of ``groupings[i]``'s ids; a group without ids
    takes every label except ``background``. The source has no channel axis; the result has
    one in front (``c^``), uint8.
    """

    source_array_config: ArrayConfig = attrs.field(
        metadata={"help_text": "The label array (no channel axis) to binarize."}
    )
    groupings: list[tuple[str, list[int]]] = attrs.field(
        metadata={
            "help_text": "[name, ids] per output channel; an empty id list binarizes every "
            "label except the background."
        }
    )
    background: int = attrs.field(
        default=0,
        metadata={"help_text": "The id considered background (never 1 in an empty group)."},
    )

    @groupings.validator
    def _check_groupings(
        self,
        attribute: attrs.Attribute[list[tuple[str, list[int]]]],
        value: list[tuple[str, list[int]]],
    ) -> None:
        if not value:
            raise ValueError("groupings must name at least one group")

    def build(self) -> Array:
        """The binarized channels, computed per requested crop.

        :raises ValueError: the source array has a channel axis.
        """
        source = self.source_array_config.build()
        if _channel_dims(source) != 0:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: the source array has axes "
                f"{tuple(source.axis_names)}; binarize needs labels without a channel axis"
            )
        channels = [
            _membership([int(i) for i in ids], self.background) for _, ids in self.groupings
        ]
        return LazyArray(
            data=ChannelsData(source.data, channels, dtype="uint8"),
            voxel_size=source.voxel_size,
            offset=source.offset,
            axis_names=(*default_axis_names(1, 0), *source.axis_names),
        )


@attrs.define(kw_only=True)
class CropArrayConfig(ArrayConfig):
    """A box of another array (DaCapo's ``CropArrayConfig``), in world units.

    ``roi`` is ``[offset, shape]``, both in world units (as DaCapo stores a ROI); both must be
    multiples of the voxel size and the box must lie inside the source array.
    """

    source_array_config: ArrayConfig = attrs.field(metadata={"help_text": "The array to crop."})
    roi: list[list[int]] = attrs.field(
        metadata={"help_text": "The ROI to crop to: [offset, shape], in world units."}
    )

    @roi.validator
    def _check_roi(
        self, attribute: attrs.Attribute[list[list[int]]], value: list[list[int]]
    ) -> None:
        if len(value) != 2 or len(value[0]) != len(value[1]):
            raise ValueError(f"roi must be [offset, shape] of equal lengths, got {value}")
        if any(s < 1 for s in value[1]):
            raise ValueError(f"roi shape must be positive, got {value[1]}")

    def build(self) -> Array:
        """The cropped array (a view: reads only the requested part of the box).

        :raises ValueError: the ROI is off the voxel grid or not inside the source array.
        """
        source = self.source_array_config.build()
        offset, shape = self.roi
        voxel_size = tuple(int(v) for v in source.voxel_size)
        if len(offset) != len(voxel_size):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: roi has {len(offset)} axes but the "
                f"source array has {len(voxel_size)} spatial axes"
            )
        relative = [o - int(s) for o, s in zip(offset, source.offset, strict=True)]
        if any(r % v for r, v in zip(relative, voxel_size, strict=True)) or any(
            s % v for s, v in zip(shape, voxel_size, strict=True)
        ):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: roi {self.roi} is not on the voxel grid "
                f"of the source (voxel size {voxel_size}, offset {tuple(source.offset)})"
            )
        start = [r // v for r, v in zip(relative, voxel_size, strict=True)]
        size = [s // v for s, v in zip(shape, voxel_size, strict=True)]
        spatial = tuple(int(s) for s in source.data.shape[-len(voxel_size) :])
        if any(b < 0 or b + n > s for b, n, s in zip(start, size, spatial, strict=True)):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: roi {self.roi} is not inside the source "
                f"array (offset {tuple(source.offset)}, shape {spatial} voxels of {voxel_size})"
            )
        channels = tuple(int(s) for s in source.data.shape[: _channel_dims(source)])
        return LazyArray(
            data=CroppedData(
                source.data, (0,) * len(channels) + tuple(start), channels + tuple(size)
            ),
            voxel_size=voxel_size,
            offset=offset,
            axis_names=source.axis_names,
        )
