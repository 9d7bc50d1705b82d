"""Entry-point module of the reference parts: provides their config classes.

Imports neither torch nor scipy.
"""

from __future__ import annotations

from dacapo_trainers import TaggedConfig, hookimpl

from ._affinities_config import AffinitiesTaskConfig
from ._one_hot_config import OneHotTaskConfig
from ._unet_config import UNetConfig
from ._zarr_dataset import ZarrDatasetConfig


@hookimpl
def dacapo_trainers_component_configs() -> list[type[TaggedConfig]]:
    """The reference architecture, task and dataset configs."""
    return [UNetConfig, AffinitiesTaskConfig, OneHotTaskConfig, ZarrDatasetConfig]
