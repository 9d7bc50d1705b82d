"""Reference parts: a U-Net, two tasks, a zarr dataset and synthetic demo data.

They are registered through the same entry points as any plugin (see
:mod:`dacapo_trainers.reference.plugin`), so run configs select them by ``"__type__"``:
``UNetConfig``, ``AffinitiesTaskConfig``, ``OneHotTaskConfig`` and ``ZarrDatasetConfig``.

Importing this package imports neither torch nor scipy; ``build()`` and
:func:`make_demo_data` import them when called.
"""

from ._affinities_config import AffinitiesTaskConfig
from ._demo_data import make_demo_data
from ._one_hot_config import OneHotTaskConfig
from ._unet_config import UNetConfig
from ._zarr_dataset import ZarrDataset, ZarrDatasetConfig

__all__ = [
    "AffinitiesTaskConfig",
    "OneHotTaskConfig",
    "UNetConfig",
    "ZarrDataset",
    "ZarrDatasetConfig",
    "make_demo_data",
]
