"""Every hook of dacapo-trainers, in one place.

Hooks are :mod:`pluggy` hooks of the project ``"dacapo_trainers"``; implement them with
:data:`dacapo_trainers.hookimpl`. Two kinds:

**Provider hooks** are implemented by the module an entry point of the group
``dacapo_trainers`` names. The registry calls them on *that* plugin alone, when a config type it
declares is first selected, and checks that the plugin returns the classes its entry points
promise::

    # pyproject.toml of a plugin
    [project.entry-points.dacapo_trainers]
    MyTrainerConfig = "my_trainer.plugin"

    # my_trainer/plugin.py  (imports no torch at top level)
    from dacapo_trainers import hookimpl
    from .config import MyTrainerConfig

    @hookimpl
    def dacapo_trainers_trainer_configs():
        return [MyTrainerConfig]

**Optional provider hooks** may be implemented in the same module; the core calls them for
one of the plugin's types and takes the first answer that is not None:
:func:`dacapo_trainers_demo_settings`.

**Lifecycle hooks** are implemented by observers (loggers, progress bars, checkpoint writers),
registered with the training driver. They are 1:N: every registered observer is called, in
pluggy's order (last registered first, ``tryfirst``/``trylast`` honoured), and return values
are ignored. Call order for one run::

    dacapo_trainers_train_start
      (dacapo_trainers_train_iteration_end
       [dacapo_trainers_train_snapshot_written]
       [dacapo_trainers_train_validation_end]
       [dacapo_trainers_train_checkpoint_written])*   -- per iteration, in this order
    dacapo_trainers_train_end                          -- always, also after an error

An observer that raises stops the run (it is a bug worth seeing); the driver still calls
``dacapo_trainers_train_end`` on the others and keeps every checkpoint already written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._contract._config import TaggedConfig, TrainerConfig
    from ._contract._stats import TrainingIterationStats
    from ._contract._trainer import Trainer

PROJECT_NAME = "dacapo_trainers"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- provider hooks -----------------------------------------------------------------------------


@hookspec
def dacapo_trainers_trainer_configs() -> list[type[TrainerConfig]]:
    """Return the trainer config classes this plugin provides.

    Implement it in the module your entry points name. Each class's name is its type name and
    must also be the name of one of your entry points in the group ``dacapo_trainers``.

    :returns: a list of :class:`~dacapo_trainers.TrainerConfig` subclasses.
    """
    raise NotImplementedError


@hookspec
def dacapo_trainers_component_configs() -> list[type[TaggedConfig]]:
    """Return the other tagged config classes this plugin provides.

    These are configs a run or a trainer config nests by ``"__type__"``: augment configs,
    architecture configs, task configs, dataset configs. As for trainer configs, each class
    name must also be an entry-point name of the plugin.

    :returns: a list of :class:`~dacapo_trainers.TaggedConfig` subclasses.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def dacapo_trainers_demo_settings(type_name: str) -> dict[str, Any] | None:
    """Trainer-config fields that make ``dacapo-trainers demo --trainer type_name`` fast on a
    laptop CPU, or None for a type that is not this plugin's.

    The demo trains a small U-Net on synthetic 3D data; it writes ``name``, ``batch_size`` and
    ``learning_rate`` itself and adds what this hook returns (plain data, as in a run file:
    nested configs as mappings with ``"__type__"``), for example fewer worker processes, a
    short warmup and a snapshot interval. A trainer whose plugin does not implement the hook
    runs the demo with its defaults. ``dacapo-trainers new-plugin --base type_name`` also
    writes these settings into the generated conformance test. Called with the plugin loaded;
    import no torch here.

    :param type_name: the trainer type the demo runs (one of this plugin's, or another's).
    :returns: a mapping of field name to value, or None.
    """
    raise NotImplementedError


# -- lifecycle hooks (observers, 1:N) -----------------------------------------------------------


@hookspec
def dacapo_trainers_train_start(
    run: Any, trainer: Trainer, model: Any, optimizer: Any, start_iteration: int, output: Path
) -> None:
    """Training is about to start (or resume).

    :param run: the run config (:class:`~dacapo_trainers.RunConfig`).
    :param trainer: the trainer, with its batch provider built.
    :param model: the model, already on its device and restored from a checkpoint if resuming.
    :param optimizer: the optimizer :meth:`~dacapo_trainers.Trainer.create_optimizer` returned,
        restored if resuming (its ``param_groups`` hold the current learning rate).
    :param start_iteration: the first iteration to run (0, or where a checkpoint left off).
    :param output: the run's output directory.
    """


@hookspec
def dacapo_trainers_train_iteration_end(
    run: Any, stats: TrainingIterationStats, num_iterations: int
) -> None:
    """One training iteration finished.

    :param run: the run config.
    :param stats: what the trainer reported for the iteration.
    :param num_iterations: the total number of iterations of the run.
    """


@hookspec
def dacapo_trainers_train_snapshot_written(run: Any, iteration: int, container: Any) -> None:
    """The trainer wrote a snapshot of iteration ``iteration`` to ``container``.

    :param container: a :class:`~dacapo_trainers.LocalContainerIdentifier`.
    """


@hookspec
def dacapo_trainers_train_validation_end(run: Any, iteration: int, loss: float) -> None:
    """A validation loss was computed after the step of iteration ``iteration``.

    Called only for runs that validate (a ``validation_interval`` and validation datasets).

    :param iteration: the ``iteration`` of the training step just completed (as in
        :class:`~dacapo_trainers.TrainingIterationStats`), so it plots on the same axis.
    :param loss: the mean loss over the validation crops.
    """


@hookspec
def dacapo_trainers_train_checkpoint_written(run: Any, iteration: int, path: Path) -> None:
    """A checkpoint of ``iteration`` completed iterations was written atomically to ``path``."""


@hookspec
def dacapo_trainers_train_end(run: Any, iteration: int, error: BaseException | None) -> None:
    """The run ended: finished, failed or interrupted.

    :param iteration: the number of completed iterations.
    :param error: the exception that ended the run, or None when it finished.
    """
