"""dacapo-trainers: the trainer layer of DaCapo-style volumetric deep learning, as plugins.

Importing this package imports neither torch, nor gunpowder, nor any plugin.
"""

from ._arrays._axes import default_axis_names
from ._arrays._in_memory import InMemoryArray, normalize_raw
from ._arrays._zarr_array import ZarrArray
from ._arrays._zarr_io import ZarrContainer, open_array, write_array
from ._batches._batch import Batch, BatchGeometry
from ._batches._batch_config import BatchTrainerConfig
from ._batches._batch_trainer import BatchTrainer
from ._batches._pinned_memory import PinnedMemory, pin_host_memory
from ._configs._converter import ConfigConverter, structure_config, unstructure_config
from ._configs._loading import load_config, load_run_config, read_config_file
from ._configs._run_config import RunConfig
from ._configs._schema import json_schema
from ._contract._config import (
    ArchitectureConfig,
    ArrayConfig,
    DatasetConfig,
    DataSplitConfig,
    StartConfig,
    TaggedConfig,
    TaskConfig,
    TrainerConfig,
)
from ._contract._geometry import sample_point_problem, world_bounds
from ._contract._models import build_model, output_voxel_size
from ._contract._protocols import (
    Architecture,
    Array,
    Dataset,
    LocalContainerIdentifier,
    Loss,
    Model,
    ModelFactory,
    Predictor,
    ScalingModel,
    Task,
)
from ._contract._schedules import linear_warmup
from ._contract._stats import TrainingIterationStats
from ._contract._trainer import RunLaunch, Trainer
from ._errors import (
    CannotTrainError,
    CheckpointError,
    ChunkReadError,
    ConfigError,
    ConfigIssue,
    DacapoTrainersError,
    DacapoTrainersWarning,
    DuplicateTypeError,
    IncompatiblePluginError,
    NonFiniteLossError,
    OutputFolderError,
    OutputLockedError,
    PluginContractError,
    PluginDisabledError,
    PluginError,
    PluginLoadError,
    RunInterrupted,
    TrainingError,
    TrainingFailedError,
    UnknownTypeError,
)
from ._plugins._discovery import ENTRY_POINT_GROUP, PluginRecord, PluginState
from ._plugins._registry import Registry, default_registry
from ._run._driver import TrainResult, train
from ._run._iterable_dataset import iterable_dataset
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "ArchitectureConfig",
    "Array",
    "ArrayConfig",
    "Batch",
    "BatchGeometry",
    "BatchTrainer",
    "BatchTrainerConfig",
    "CannotTrainError",
    "CheckpointError",
    "ChunkReadError",
    "ConfigConverter",
    "ConfigError",
    "ConfigIssue",
    "DacapoTrainersError",
    "DacapoTrainersWarning",
    "DataSplitConfig",
    "Dataset",
    "DatasetConfig",
    "DuplicateTypeError",
    "ENTRY_POINT_GROUP",
    "InMemoryArray",
    "IncompatiblePluginError",
    "LocalContainerIdentifier",
    "Loss",
    "Model",
    "ModelFactory",
    "NonFiniteLossError",
    "OutputFolderError",
    "OutputLockedError",
    "PinnedMemory",
    "PluginContractError",
    "PluginDisabledError",
    "PluginError",
    "PluginLoadError",
    "PluginRecord",
    "PluginState",
    "Predictor",
    "Registry",
    "RunConfig",
    "RunInterrupted",
    "RunLaunch",
    "ScalingModel",
    "StartConfig",
    "TaggedConfig",
    "Task",
    "TaskConfig",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "TrainingError",
    "TrainingFailedError",
    "TrainingIterationStats",
    "UnknownTypeError",
    "ZarrArray",
    "ZarrContainer",
    "__version__",
    "build_model",
    "default_axis_names",
    "default_registry",
    "hookimpl",
    "iterable_dataset",
    "json_schema",
    "linear_warmup",
    "load_config",
    "load_run_config",
    "normalize_raw",
    "open_array",
    "output_voxel_size",
    "pin_host_memory",
    "read_config_file",
    "sample_point_problem",
    "structure_config",
    "train",
    "unstructure_config",
    "world_bounds",
    "write_array",
]
