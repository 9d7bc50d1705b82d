"""A minimal in-memory :class:`~dacapo_trainers.Array`: a numpy buffer plus its geometry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ._axes import axis_name_tuple, default_axis_names


def _as_int_tuple(value: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


@attrs.define(eq=False)
class InMemoryArray:
    """An :class:`~dacapo_trainers.Array` over a numpy array already in memory.

    Trainers wrap crops in it before handing them to a task's predictor. ``axis_names`` defaults
    to :func:`~dacapo_trainers.default_axis_names` for the data's number of axes, the last
    ``len(voxel_size)`` of them spatial: ``z, y, x`` (or ``y, x``), with ``"c^"`` for each
    leading channel axis.
    """

    data: Any
    voxel_size: tuple[int, ...] = attrs.field(converter=_as_int_tuple)
    offset: tuple[int, ...] = attrs.field(converter=_as_int_tuple)
    axis_names: tuple[str, ...] = attrs.field(converter=axis_name_tuple)

    @axis_names.default
    def _default_axis_names(self) -> tuple[str, ...]:
        return default_axis_names(int(self.data.ndim), len(self.voxel_size))

    @property
    def dtype(self) -> Any:
        """The numpy dtype of :attr:`data`."""
        return self.data.dtype

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the spatial (non-channel) axes, in voxels."""
        return tuple(self.data.shape[-len(self.voxel_size) :])


def normalize_raw(data: Any) -> Any:
    """Raw intensities as float32: integer dtypes mapped linearly from [min, max] to [-1, 1].

    Centred inputs keep small valid-convolution U-Nets from stalling (with [0, 1] inputs and
    ReLUs, a tiny network often sits at the constant-prediction loss). Float data is returned
    as float32 unchanged in value: it is taken as already normalized.

    Trainers do not call it: the first-party trainers and the scaffold's feed raw to the model
    as the dataset gives it, cast to float32 (DaCapo's semantics), and normalising is the
    dataset config's job (``intensity_range`` of ``ZarrDatasetConfig``, DaCapo's
    ``IntensitiesArrayConfig``). It is kept for code that reads arrays itself.
    """
    import numpy as np

    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        scale = np.float32(2.0 / (float(info.max) - float(info.min)))
        return (data.astype(np.float32) - np.float32(info.min)) * scale - np.float32(1.0)
    return data.astype(np.float32, copy=False)
