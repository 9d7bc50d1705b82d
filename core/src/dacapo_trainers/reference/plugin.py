"""Entry-point module of the reference parts: provides their config classes.

Imports neither torch nor scipy.
"""

from __future__ import annotations

from dacapo_trainers import StartConfig, TaggedConfig, TrainerConfig, hookimpl

from ._affinities_config import AffinitiesTaskConfig
from ._array_configs import (
    BinarizeArrayConfig,
    CropArrayConfig,
    IntensitiesArrayConfig,
    ZarrArrayConfig,
)
from ._cnnectome_unet_config import CNNectomeUNetConfig
from ._datasplit_configs import RawGTDatasetConfig, TrainValidateDataSplitConfig
from ._distance_config import DistanceTaskConfig
from ._dummy_trainer_config import DummyTrainerConfig
from ._one_hot_config import OneHotTaskConfig
from ._unet_config import UNetConfig
from ._zarr_dataset import ZarrDatasetConfig


@hookimpl
def dacapo_trainers_trainer_configs() -> list[type[TrainerConfig]]:
    """DaCapo's DummyTrainer."""
    return [DummyTrainerConfig]


@hookimpl
def dacapo_trainers_component_configs() -> list[type[TaggedConfig]]:
    """The reference architecture, task, dataset, datasplit, array and start configs."""
    return [
        UNetConfig,
        CNNectomeUNetConfig,
        AffinitiesTaskConfig,
        OneHotTaskConfig,
        DistanceTaskConfig,
        ZarrDatasetConfig,
        RawGTDatasetConfig,
        TrainValidateDataSplitConfig,
        ZarrArrayConfig,
        IntensitiesArrayConfig,
        BinarizeArrayConfig,
        CropArrayConfig,
        StartConfig,
    ]
