"""The model of a run, as the driver, the validation and the test kit build and read it.

The two optional parts of DaCapo's objects that the core relies on are used here and nowhere
else (their protocols are :class:`~dacapo_trainers.ModelFactory` and
:class:`~dacapo_trainers.ScalingModel`): a predictor that builds the model from the
architecture, and a model whose output voxel size differs from its input's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from ._protocols import Architecture, Model, ModelFactory, ScalingModel, Task


def build_model(task: Task, architecture: Architecture) -> Model:
    """The model to train: ``task.predictor.create_model(architecture)`` where the predictor
    is a :class:`~dacapo_trainers.ModelFactory` (DaCapo's and the reference tasks' are: the
    task's head is added, e.g. one output channel per affinity), else the architecture itself.

    The driver, the validation and the conformance kit build models with this function, so a
    trainer sees in its tests the model it gets in a run.

    :raises ValueError: from ``create_model``, for an architecture that does not fit the task
        (e.g. an affinity offset larger than the output shape).
    """
    predictor = task.predictor
    if isinstance(predictor, ModelFactory):
        return predictor.create_model(architecture)
    # Trained as it is; each trainer checks the shapes and channels it needs of it.
    return cast("Model", architecture)


def output_voxel_size(model: Any, voxel_size: Sequence[int]) -> tuple[int, ...]:
    """The voxel size of ``model``'s output for an input of ``voxel_size``.

    ``model.scale(voxel_size)`` where the model is a :class:`~dacapo_trainers.ScalingModel`
    (DaCapo's models are; an upsampling one gives a finer size), else ``voxel_size``.
    ``scale`` gets a funlib ``Coordinate`` where funlib.geometry is installed (DaCapo's
    ``scale`` divides one), else a tuple of ints.
    """
    size = tuple(int(v) for v in voxel_size)
    if not isinstance(model, ScalingModel):
        return size
    try:
        # funlib.geometry ships no type information (an optional dependency)
        from funlib.geometry import Coordinate  # type: ignore[attr-defined]
    except ImportError:
        return tuple(int(v) for v in model.scale(size))
    return tuple(int(v) for v in model.scale(Coordinate(size)))  # type: ignore[no-untyped-call]
