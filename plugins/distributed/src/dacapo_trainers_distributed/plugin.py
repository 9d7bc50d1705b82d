"""Entry-point module of the plugin: provides the config class. Imports no torch."""

from __future__ import annotations

from dacapo_trainers import TrainerConfig, hookimpl

from ._config import DistributedTrainerConfig


@hookimpl
def dacapo_trainers_trainer_configs() -> list[type[TrainerConfig]]:
    """The trainer configs of this plugin: :class:`DistributedTrainerConfig`."""
    return [DistributedTrainerConfig]
