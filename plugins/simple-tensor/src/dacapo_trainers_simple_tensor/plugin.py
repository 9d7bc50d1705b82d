"""Entry-point module of the plugin: provides the config class. Imports no torch."""

from __future__ import annotations

from typing import Any

from dacapo_trainers import TrainerConfig, hookimpl

from ._config import SimpleTensorTrainerConfig


@hookimpl
def dacapo_trainers_trainer_configs() -> list[type[TrainerConfig]]:
    """The trainer configs of this plugin: :class:`SimpleTensorTrainerConfig`."""
    return [SimpleTensorTrainerConfig]


@hookimpl
def dacapo_trainers_demo_settings(type_name: str) -> dict[str, Any] | None:
    """For ``dacapo-trainers demo``: a short warmup and a snapshot every 100 iterations."""
    if type_name != SimpleTensorTrainerConfig.type_name():
        return None
    return {"warmup_iterations": 20, "snapshot_interval": 100}
