"""Entry-point module of dacapo-trainers-gunpowder: the config classes it provides.

Imports no torch and no gunpowder: the registry loads this module to learn the config types,
and the trainer class is named by a string (``GunpowderTrainerConfig.trainer_type``).
"""

from __future__ import annotations

from typing import Any

from dacapo_trainers import TaggedConfig, TrainerConfig, hookimpl

from ._augment_configs import AUGMENT_CONFIGS
from ._em_augment_configs import EM_AUGMENT_CONFIGS
from ._trainer_config import GunpowderTrainerConfig


@hookimpl
def dacapo_trainers_trainer_configs() -> list[type[TrainerConfig]]:
    """``GunpowderTrainerConfig``."""
    return [GunpowderTrainerConfig]


@hookimpl
def dacapo_trainers_component_configs() -> list[type[TaggedConfig]]:
    """The augment configs (``ElasticAugmentConfig``, ``SimpleAugmentConfig``, ...)."""
    return [*AUGMENT_CONFIGS, *EM_AUGMENT_CONFIGS]


@hookimpl
def dacapo_trainers_demo_settings(type_name: str) -> dict[str, Any] | None:
    """For ``dacapo-trainers demo``: two worker processes, a short warmup, one augment."""
    if type_name != GunpowderTrainerConfig.type_name():
        return None
    return {
        "num_data_fetchers": 2,
        "warmup_iterations": 20,
        "snapshot_interval": 100,
        "augments": [{"__type__": "SimpleAugmentConfig"}],
    }
