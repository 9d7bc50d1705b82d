"""dacapo-trainers-gunpowder: DaCapo's GunpowderTrainer and its augments, as a plugin.

Importing this package imports neither torch nor gunpowder; the trainer
(``dacapo_trainers_gunpowder._trainer``) and the nodes (``dacapo_trainers_gunpowder.nodes``)
import them when a trainer is built.
"""

from ._augment_configs import (
    AugmentConfig,
    ElasticAugmentConfig,
    GammaAugmentConfig,
    IntensityAugmentConfig,
    IntensityScaleShiftAugmentConfig,
    NoiseAugmentConfig,
    SimpleAugmentConfig,
)
from ._trainer_config import GunpowderTrainerConfig

__version__ = "0.1.0"

__all__ = [
    "AugmentConfig",
    "ElasticAugmentConfig",
    "GammaAugmentConfig",
    "GunpowderTrainerConfig",
    "IntensityAugmentConfig",
    "IntensityScaleShiftAugmentConfig",
    "NoiseAugmentConfig",
    "SimpleAugmentConfig",
    "__version__",
]
