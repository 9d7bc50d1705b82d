"""``ZarrDatasetConfig``: a training dataset of raw, gt and mask arrays in one zarr container."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from dacapo_trainers import Array, DatasetConfig, open_array

from ._array_configs import container_text
from ._lazy import LazyArray, LazyData, intensity_map


def _as_points(
    points: Sequence[Sequence[float]] | None,
) -> tuple[tuple[float, ...], ...] | None:
    if points is None:
        return None
    return tuple(tuple(float(c) for c in point) for point in points)


@attrs.define(eq=False)
class ZarrDataset:
    """A :class:`~dacapo_trainers.Dataset` whose arrays live in a zarr container.

    :param name: the dataset's name.
    :param raw: the raw intensities.
    :param gt: the ground truth, or None.
    :param mask: where the ground truth is valid (nonzero), or None for everywhere.
    :param weight: the relative sampling weight of this dataset.
    :param sample_points: world coordinates training crops should centre on, or None.
    """

    name: str
    raw: Array
    gt: Array | None
    mask: Array | None = None
    weight: float = 1.0
    sample_points: tuple[tuple[float, ...], ...] | None = attrs.field(
        default=None, converter=_as_points
    )


@attrs.define(kw_only=True)
class ZarrDatasetConfig(DatasetConfig):
    """A dataset read from a zarr container, with geometry from the arrays' attributes.

    The arrays are opened with :func:`dacapo_trainers.open_array`, so their voxel size and
    offset come from the ``voxel_size`` (or ``resolution``) and ``offset`` attributes, as
    written by :func:`dacapo_trainers.write_array`, funlib.persistence or DaCapo, or from
    OME-NGFF multiscales metadata. Arrays are read lazily, per requested crop. ``container``
    may be a URL (``s3://``, ``gs://``, ``http(s)://``, read-only, with ``storage_options``
    for its fsspec file system; ``pip install 'dacapo-trainers[remote]'``).

    Raw intensities reach the model as stored (cast to float32 by the trainer), unless
    ``intensity_range`` is given: then raw is mapped linearly from ``intensity_range`` to
    ``normalized_range`` (values outside the range are not clipped).
    """

    container: str = attrs.field(
        converter=container_text,  # a Path given in Python becomes text, a URL keeps its //
        metadata={
            "help_text": "The zarr container holding the arrays: a local path, or an s3://, "
            "gs:// or http(s):// URL (read-only; needs dacapo-trainers[remote])."
        },
    )
    raw: str = attrs.field(
        default="raw", metadata={"help_text": "The raw array's path inside the container."}
    )
    gt: str | None = attrs.field(
        default="gt",
        metadata={"help_text": "The ground truth array's path inside the container, or null."},
    )
    mask: str | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The path of the mask array (nonzero where the gt is valid) inside "
            "the container, or null for a gt valid everywhere."
        },
    )
    weight: float = attrs.field(
        default=1.0,
        metadata={"help_text": "The relative sampling weight of this dataset during training."},
    )
    storage_options: dict[str, Any] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "For a URL container: options of its fsspec file system, e.g. "
            "{anon: true} for a public S3 bucket or {endpoint_url: ...}; null: credentials "
            "and endpoint found the standard way (AWS_* variables, profiles)."
        },
    )
    sample_points: list[list[float]] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "World coordinates (e.g. nm) that training crops should centre on, "
            "or null to sample anywhere."
        },
    )

    intensity_range: list[float] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "[min, max] of the raw intensities, mapped linearly to "
            "normalized_range; null: raw as stored (cast to float32)."
        },
    )
    normalized_range: list[float] = attrs.field(
        default=attrs.Factory(lambda: [0.0, 1.0]),
        metadata={"help_text": "[low, high] that intensity_range is mapped to."},
    )

    @intensity_range.validator
    def _check_intensity_range(
        self, attribute: attrs.Attribute[list[float] | None], value: list[float] | None
    ) -> None:
        if value is not None and (len(value) != 2 or not value[0] < value[1]):
            raise ValueError(f"intensity_range must be [min, max] with min < max, got {value}")

    @normalized_range.validator
    def _check_normalized_range(
        self, attribute: attrs.Attribute[list[float]], value: list[float]
    ) -> None:
        if len(value) != 2 or not value[0] < value[1]:
            raise ValueError(f"normalized_range must be [low, high] with low < high, got {value}")

    @weight.validator
    def _check_weight(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= 0:
            raise ValueError(f"weight must not be negative, got {value}")

    def build(self) -> ZarrDataset:
        """Open the arrays.

        :raises ValueError: if the container or one of its arrays does not exist, or the
            sample points do not match the raw array's dimensions.
        """
        container = self.container
        # URLs (scheme://) are checked by open_array, which says what is wrong remotely
        if "://" not in container and not Path(container).exists():
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: zarr container {container!r} "
                "does not exist; check the path (relative paths are relative to the working "
                "directory)"
            )
        raw = self._open(container, self.raw)
        if self.intensity_range is not None:
            raw = LazyArray(
                data=LazyData(
                    raw.data,
                    intensity_map(self.intensity_range, self.normalized_range),
                    dtype="float32",
                ),
                voxel_size=raw.voxel_size,
                offset=raw.offset,
                axis_names=raw.axis_names,
            )
        dataset = ZarrDataset(
            name=self.name,
            raw=raw,
            gt=None if self.gt is None else self._open(container, self.gt),
            mask=None if self.mask is None else self._open(container, self.mask),
            weight=float(self.weight),
            sample_points=self.sample_points,
        )
        dims = len(raw.voxel_size)
        for point in dataset.sample_points or ():
            if len(point) != dims:
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: sample point {list(point)} has "
                    f"{len(point)} coordinates, but raw {self.raw!r} has {dims} spatial axes"
                )
        return dataset

    def _open(self, container: str, dataset: str) -> Array:
        try:
            return open_array(container, dataset, self.storage_options)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {error}") from error
