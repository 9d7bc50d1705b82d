"""Structural types for what a trainer touches: model, task, datasets, arrays, containers.

They are :class:`typing.Protocol` classes, so DaCapo's own objects (and anything shaped like
them) satisfy them without inheriting from anything here. Nothing in this module imports torch
at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch


@runtime_checkable
class Array(Protocol):
    """A voxel array with world-unit geometry, as DaCapo's ``Array`` and funlib's ``Array``.

    ``data`` is indexable like a numpy array with axes ``axis_names`` (a channel axis, if any,
    is named ``"c^"`` and comes first). ``voxel_size`` and ``offset`` are in world units
    (e.g. nm) for the spatial axes only; ``offset`` is the world position of voxel 0.
    """

    @property
    def data(self) -> Any: ...

    @property
    def voxel_size(self) -> Sequence[int]: ...

    @property
    def offset(self) -> Sequence[int]: ...

    @property
    def axis_names(self) -> Sequence[str]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...


@runtime_checkable
class Dataset(Protocol):
    """A training dataset: raw intensities, ground truth and optional mask/weight.

    ``weight`` is the relative sampling weight of this dataset among all training datasets.
    ``sample_points`` optionally lists world coordinates that training crops should centre on.
    """

    @property
    def name(self) -> str: ...

    @property
    def raw(self) -> Array: ...

    @property
    def gt(self) -> Array | None: ...

    @property
    def mask(self) -> Array | None: ...

    @property
    def weight(self) -> float: ...

    @property
    def sample_points(self) -> Sequence[Sequence[float]] | None: ...


@runtime_checkable
class Model(Protocol):
    """A ``torch.nn.Module`` that knows its input and output shapes (in voxels, spatial only)."""

    @property
    def input_shape(self) -> Sequence[int]: ...

    @property
    def output_shape(self) -> Sequence[int]: ...

    @property
    def eval_input_shape(self) -> Sequence[int]: ...

    @property
    def num_in_channels(self) -> int: ...

    @property
    def num_out_channels(self) -> int: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def parameters(self, recurse: bool = True) -> Any: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class Predictor(Protocol):
    """Turns ground truth into the training target and its per-voxel weight.

    ``gt`` is an :class:`Array`. ``target`` is the array returned by :meth:`create_target`.
    Both return arrays whose data is a numpy array (channels first) on the gt's geometry.
    """

    def create_target(self, gt: Array) -> Array: ...

    def create_weight(self, gt: Array, target: Array, mask: Array | None = None) -> Array: ...


@runtime_checkable
class Loss(Protocol):
    """Computes a scalar loss tensor from prediction, target and weight tensors."""

    def compute(
        self, prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor: ...


@runtime_checkable
class Task(Protocol):
    """What the network learns: a predictor (gt -> target, weight) and a loss."""

    @property
    def predictor(self) -> Predictor: ...

    @property
    def loss(self) -> Loss: ...


@runtime_checkable
class LocalContainerIdentifier(Protocol):
    """Where a trainer writes arrays: a zarr container path and a dataset (group) in it."""

    @property
    def container(self) -> Path: ...

    @property
    def dataset(self) -> str: ...
