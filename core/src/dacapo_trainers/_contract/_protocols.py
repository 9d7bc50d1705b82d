"""Structural types for what a trainer touches: model, task, datasets, arrays, containers.

They are :class:`typing.Protocol` classes: anything shaped like them satisfies them without
inheriting from anything here. Nothing in this module imports torch at run time.

What DaCapo 0.3.5's own objects satisfy:

* :class:`Array` (funlib.persistence's ``Array``), :class:`Dataset`, :class:`Model`,
  :class:`Loss` and :class:`LocalContainerIdentifier` (which asks only for ``container``):
  yes.
* :class:`Predictor`: no. DaCapo's ``create_weight(gt, target, mask, moving_class_counts)``
  returns a pair ``(weight, moving_class_counts)``, and its gunpowder trainer asks
  ``gt_region_for_roi``; the trainers here call ``create_weight(gt, target, mask)`` and use
  the array it returns. Hence :class:`Task` neither, for DaCapo's tasks.

Every part the core uses is declared here. Two parts are optional, checked with
``isinstance`` against their own protocol in one place each
(:func:`~dacapo_trainers.build_model` and :func:`~dacapo_trainers.output_voxel_size`):

* ``create_model(architecture)`` on a task's predictor (:class:`ModelFactory`); without it
  the architecture itself is trained;
* ``scale(voxel_size)`` on a model or an architecture (:class:`ScalingModel`); without it the
  output voxel size is the input's.

An :class:`Architecture` may also have ``eval_input_shape`` (the reference heads pass it on;
without it prediction uses ``input_shape``).

What the core calls, and where:

* the driver (``_run_inputs``): ``config.build()`` of every config, the datasets'
  ``raw``/``gt``/``mask`` geometry (``voxel_size``, ``offset``, ``data.shape``) and
  ``weight``, :func:`~dacapo_trainers.build_model`;
* the training loop: ``model.to(device)``, ``model.state_dict()`` and
  ``model.load_state_dict(state)`` (checkpoints and start weights), and the trainer;
* the validation: ``model.input_shape``, ``output_shape``, ``training``, ``eval()``,
  ``train(mode)``, calling the model, :func:`~dacapo_trainers.output_voxel_size`,
  ``task.predictor.create_target``/``create_weight`` and ``task.loss.compute``.
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
class Architecture(Protocol):
    """The network a task's predictor builds its model from (DaCapo's ``Architecture``).

    Shapes are in voxels, spatial axes only. It may also have ``eval_input_shape`` (the input
    shape for prediction) and ``scale`` (see :class:`ScalingModel`). A
    :class:`ModelFactory` turns it into the :class:`Model` to train; without one, the
    architecture is trained as it is and must be a :class:`Model` itself.
    """

    @property
    def input_shape(self) -> Sequence[int]: ...

    @property
    def num_in_channels(self) -> int: ...

    @property
    def num_out_channels(self) -> int: ...


@runtime_checkable
class Model(Protocol):
    """A ``torch.nn.Module`` that knows its input and output shapes (in voxels, spatial only).

    ``eval_input_shape`` is the input shape for prediction (DaCapo's input shape plus its
    ``eval_shape_increase``). A model may also have ``scale`` (see :class:`ScalingModel`).
    ``training``, ``eval``, ``train``, ``state_dict`` and ``load_state_dict`` are
    ``torch.nn.Module``'s.
    """

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

    @property
    def training(self) -> bool: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> Any: ...

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class ScalingModel(Protocol):
    """A :class:`Model` whose output voxel size differs from its input's (DaCapo's ``scale``).

    ``scale(voxel_size)`` is the output voxel size for input voxels of ``voxel_size`` (e.g.
    half of it for a network that upsamples by 2). Models without ``scale`` keep the voxel
    size. Read it through :func:`~dacapo_trainers.output_voxel_size`, which passes a funlib
    ``Coordinate`` as DaCapo does.
    """

    def scale(self, voxel_size: Sequence[int]) -> Sequence[int]: ...


@runtime_checkable
class Predictor(Protocol):
    """Turns ground truth into the training target and its per-voxel weight.

    ``gt`` is an :class:`Array`. ``target`` is the array returned by :meth:`create_target`.
    Both return arrays whose data is a numpy array (channels first) on the gt's geometry;
    ``create_weight`` returns the weight array alone (DaCapo's returns a pair: see the module
    docstring). ``mask`` is nonzero where the gt is valid. A predictor usually also builds the
    model (see :class:`ModelFactory`).
    """

    def create_target(self, gt: Array) -> Array: ...

    def create_weight(self, gt: Array, target: Array, mask: Array | None = None) -> Array: ...


@runtime_checkable
class ModelFactory(Protocol):
    """A predictor that builds the model to train from an architecture (as DaCapo's).

    :func:`~dacapo_trainers.build_model` (which the driver and the test kit call) calls
    ``task.predictor.create_model(architecture)`` when the predictor has it (adding the task's
    head, e.g. one output channel per affinity) and trains the architecture itself otherwise.
    It may raise ``ValueError`` for an architecture that does not fit the task (e.g. an
    affinity offset larger than the output shape).
    """

    def create_model(self, architecture: Architecture) -> Model: ...


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
    """Where a trainer writes arrays: a zarr container path.

    Ours (:class:`~dacapo_trainers.ZarrContainer`) also has ``dataset``, a group inside the
    container; :func:`~dacapo_trainers.write_array` writes into it when present and at the
    container's root otherwise (DaCapo's identifiers have no ``dataset``).
    """

    @property
    def container(self) -> Path: ...
