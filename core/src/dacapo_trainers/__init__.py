"""dacapo-trainers: the trainer layer of DaCapo-style volumetric deep learning, as plugins.

Importing this package imports neither torch, nor gunpowder, nor any plugin.
"""

from ._arrays import InMemoryArray, normalize_raw
from ._config import ArchitectureConfig, DatasetConfig, TaggedConfig, TaskConfig, TrainerConfig
from ._protocols import Array, Dataset, LocalContainerIdentifier, Loss, Model, Predictor, Task
from ._stats import TrainingIterationStats
from ._trainer import Trainer
from ._zarr_io import ZarrArray, ZarrContainer, open_array, write_array
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
