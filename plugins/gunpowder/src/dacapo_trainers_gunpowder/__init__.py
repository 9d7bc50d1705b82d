"""dacapo-trainers-gunpowder: DaCapo's GunpowderTrainer and its augments, as a plugin.

Importing this package imports neither torch nor gunpowder; :class:`GunpowderTrainer` (which
does) is loaded on first access, and the nodes (``dacapo_trainers_gunpowder.nodes``) when a
trainer is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._augment_configs import (
    AugmentConfig,
    ElasticAugmentConfig,
    GammaAugmentConfig,
    IntensityAugmentConfig,
    IntensityScaleShiftAugmentConfig,
    NoiseAugmentConfig,
    SimpleAugmentConfig,
)
from ._em_augment_configs import (
    DefectAugmentConfig,
    DeformAugmentConfig,
    GaussianBlurAugmentConfig,
)
from ._errors import DataWorkerError
from ._trainer_config import GunpowderTrainerConfig

if TYPE_CHECKING:
    from ._trainer import GunpowderTrainer

__version__ = "0.1.0"

__all__ = [
    "AugmentConfig",
    "DataWorkerError",
    "DefectAugmentConfig",
    "DeformAugmentConfig",
    "ElasticAugmentConfig",
    "GammaAugmentConfig",
    "GaussianBlurAugmentConfig",
    "GunpowderTrainer",
    "GunpowderTrainerConfig",
    "IntensityAugmentConfig",
    "IntensityScaleShiftAugmentConfig",
    "NoiseAugmentConfig",
    "SimpleAugmentConfig",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # PEP 562: keep torch and gunpowder out of `import dacapo_trainers_gunpowder`.
    if name == "GunpowderTrainer":
        from ._trainer import GunpowderTrainer

        return GunpowderTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
