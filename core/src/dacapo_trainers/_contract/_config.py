"""Config base classes: every config selected by a ``"__type__"`` tag derives from TaggedConfig.

A config class is an attrs class. Its *type name* (the ``"__type__"`` value in JSON/YAML, and the
entry-point name a plugin declares) is the class name, as in DaCapo. Fields carry their user
documentation in ``metadata={"help_text": ...}``, also as in DaCapo; ``dacapo-trainers show``
prints it and the JSON Schema uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ._trainer import Trainer  # no torch at run time; needed to resolve annotations

if TYPE_CHECKING:
    from ._protocols import Array, Dataset, Model, Task

#: The largest ``learning_rate`` a trainer config accepts: far above any useful rate, low enough
#: that a typo (``1e3`` for ``1e-3``) or an overflow is refused before training.
MAX_LEARNING_RATE = 10.0


@attrs.define(kw_only=True)
class TaggedConfig:
    """Base of every config that a ``"__type__"`` tag selects.

    Subclasses are attrs classes (``@attrs.define``). Polymorphic fields are declared with a
    base class (``trainer_config: TrainerConfig``, ``augments: list[AugmentConfig]``); the
    converter then accepts any registered subclass whose type name the data's ``"__type__"``
    gives.
    """

    @classmethod
    def type_name(cls) -> str:
        """The ``"__type__"`` tag of this class: its class name."""
        return cls.__name__


@attrs.define(kw_only=True)
class TrainerConfig(TaggedConfig):
    """Base class of trainer configs (DaCapo's ``TrainerConfig``).

    Each subclass names the trainer it configures in the class attribute ``trainer_type``: the
    trainer class itself, or a ``"module:Class"`` string that is imported only when a trainer
    is built (so that validating a config never imports torch or gunpowder).
    """

    trainer_type: ClassVar[type[Trainer] | str]

    name: str = attrs.field(
        metadata={"help_text": "A unique name for this trainer config, used to identify it."}
    )
    batch_size: int = attrs.field(
        metadata={"help_text": "The number of samples in one training batch."}
    )
    learning_rate: float = attrs.field(
        metadata={"help_text": "The (initial) learning rate of the optimizer."}
    )

    @batch_size.validator
    def _check_batch_size(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"batch_size must be at least 1, got {value}")

    @learning_rate.validator
    def _check_learning_rate(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 < value <= MAX_LEARNING_RATE:  # also refuses NaN and inf
            raise ValueError(
                f"learning_rate must be a number above 0 and at most {MAX_LEARNING_RATE:g} "
                f"(typical values are 1e-5 to 1e-2), got {value}"
            )

    @classmethod
    def resolve_trainer_type(cls) -> type[Trainer]:
        """The trainer class of this config, importing it if ``trainer_type`` is a string."""
        target = getattr(cls, "trainer_type", None)
        if target is None:
            raise TypeError(f"{cls.__qualname__} does not set the class attribute trainer_type")
        resolved = _import_object(target) if isinstance(target, str) else target
        if not (isinstance(resolved, type) and issubclass(resolved, Trainer)):
            raise TypeError(
                f"{cls.__qualname__}.trainer_type is {target!r}, which is not a Trainer subclass"
            )
        return resolved

    def build_trainer(self) -> Trainer:
        """A new trainer for this config: ``trainer_type(self)``."""
        return self.resolve_trainer_type()(self)


@attrs.define(kw_only=True)
class ArchitectureConfig(TaggedConfig):
    """Base class of architecture (model) configs."""

    name: str = attrs.field(metadata={"help_text": "A unique name for this architecture."})

    def build(self) -> Model:
        """Build the model (a ``torch.nn.Module`` satisfying :class:`~dacapo_trainers.Model`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")


@attrs.define(kw_only=True)
class TaskConfig(TaggedConfig):
    """Base class of task configs (what the network learns: predictor and loss)."""

    name: str = attrs.field(metadata={"help_text": "A unique name for this task."})

    def build(self) -> Task:
        """Build the task."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")


@attrs.define(kw_only=True)
class DatasetConfig(TaggedConfig):
    """Base class of dataset configs."""

    name: str = attrs.field(metadata={"help_text": "A unique name for this dataset."})

    def build(self) -> Dataset:
        """Open the dataset (a :class:`~dacapo_trainers.Dataset`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")


@attrs.define(kw_only=True)
class ArrayConfig(TaggedConfig):
    """Base class of array configs (DaCapo's ``ArrayConfig``): one array of a dataset.

    Array configs nest: a transforming array (intensities, binarize, crop) names its source
    array config. ``build()`` opens the array lazily: data are read per requested slice.
    """

    name: str = attrs.field(metadata={"help_text": "A unique name for this array."})

    def build(self) -> Array:
        """Open the array (an :class:`~dacapo_trainers.Array`; reads data lazily)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")


@attrs.define(kw_only=True)
class DataSplitConfig(TaggedConfig):
    """Base class of data splits (DaCapo's ``DataSplitConfig``): training and validation sets."""

    name: str = attrs.field(metadata={"help_text": "A unique name for this datasplit."})

    def train_dataset_configs(self) -> list[DatasetConfig]:
        """The configs of the datasets to train on."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement train_dataset_configs()"
        )

    def validate_dataset_configs(self) -> list[DatasetConfig]:
        """The configs of the datasets to compute the validation loss on (may be empty)."""
        return []


@attrs.define(kw_only=True)
class StartConfig(TaggedConfig):
    """Where a run's initial weights come from (DaCapo's ``StartConfig``): another run.

    ``run`` is the other run's output folder or a DaCapo run folder, or a name (then its folder
    is ``runs/<run>``, the default output, or DaCapo's ``<runs_base_dir>/<run>``). ``criterion``
    picks the checkpoint: ``latest``, or a number of completed iterations. The weights are
    loaded only when a run starts fresh, never over a resume.
    """

    run: str = attrs.field(
        metadata={
            "help_text": "The run to start from: its output folder or a DaCapo run folder, "
            "or its name (folder runs/<name>, else DaCapo's <runs_base_dir>/<name>)."
        }
    )
    criterion: str = attrs.field(
        metadata={
            "help_text": "Which checkpoint of that run: 'latest', or an iteration number "
            "(e.g. '1000')."
        }
    )


def _import_object(target: str) -> Any:
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj
