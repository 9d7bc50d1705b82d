"""dacapo-trainers: the trainer layer of DaCapo-style volumetric deep learning, as plugins.

Importing this package imports neither torch, nor gunpowder, nor any plugin.
"""

from ._arrays import InMemoryArray
from ._arrays import normalize_raw
from ._config import ArchitectureConfig
from ._config import DatasetConfig
from ._config import TaggedConfig
from ._config import TaskConfig
from ._config import TrainerConfig
from ._protocols import Array
from ._protocols import Dataset
from ._protocols import LocalContainerIdentifier
from ._protocols import Loss
from ._protocols import Model
from ._protocols import Predictor
from ._protocols import Task
from ._stats import TrainingIterationStats
from ._trainer import Trainer
from ._zarr_io import ZarrArray
from ._zarr_io import ZarrContainer
from ._zarr_io import open_array
from ._zarr_io import write_array
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "ArchitectureConfig",
    "Array",
    "Dataset",
    "DatasetConfig",
    "InMemoryArray",
    "LocalContainerIdentifier",
    "Loss",
    "Model",
    "Predictor",
    "TaggedConfig",
    "Task",
    "TaskConfig",
    "Trainer",
    "TrainerConfig",
    "TrainingIterationStats",
    "ZarrArray",
    "ZarrContainer",
    "__version__",
    "hookimpl",
    "normalize_raw",
    "open_array",
    "write_array",
]
