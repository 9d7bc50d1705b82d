"""Reference parts: U-Nets, tasks, datasets, DaCapo's config types and synthetic demo data.

They are registered through the same entry points as any plugin (see
:mod:`dacapo_trainers.reference.plugin`), so run configs select them by ``"__type__"``. Ours:
``UNetConfig`` and ``ZarrDatasetConfig``. DaCapo 0.3.5's, with its names, fields, defaults
and behaviour (what we do better is an opt-in field): ``CNNectomeUNetConfig``,
``AffinitiesTaskConfig``, ``OneHotTaskConfig``, ``DistanceTaskConfig``,
``TrainValidateDataSplitConfig``, ``RawGTDatasetConfig``, ``ZarrArrayConfig``,
``IntensitiesArrayConfig``, ``BinarizeArrayConfig``, ``CropArrayConfig``, ``StartConfig`` and
``DummyTrainerConfig``.

Importing this package imports neither torch nor scipy; ``build()`` and
:func:`make_demo_data` import them when called.
"""

from ._affinities_config import AffinitiesTaskConfig
from ._array_configs import (
    BinarizeArrayConfig,
    CropArrayConfig,
    IntensitiesArrayConfig,
    ZarrArrayConfig,
)
from ._cnnectome_unet_config import CNNectomeUNetConfig
from ._datasplit_configs import RawGTDatasetConfig, TrainValidateDataSplitConfig
from ._demo_data import make_demo_data
from ._distance_config import DistanceTaskConfig
from ._dummy_trainer_config import DummyTrainerConfig
from ._one_hot_config import OneHotTaskConfig
from ._unet_config import UNetConfig
from ._zarr_dataset import ZarrDataset, ZarrDatasetConfig

__all__ = [
    "AffinitiesTaskConfig",
    "BinarizeArrayConfig",
    "CNNectomeUNetConfig",
    "CropArrayConfig",
    "DistanceTaskConfig",
    "DummyTrainerConfig",
    "IntensitiesArrayConfig",
    "OneHotTaskConfig",
    "RawGTDatasetConfig",
    "TrainValidateDataSplitConfig",
    "UNetConfig",
    "ZarrArrayConfig",
    "ZarrDataset",
    "ZarrDatasetConfig",
    "make_demo_data",
]
