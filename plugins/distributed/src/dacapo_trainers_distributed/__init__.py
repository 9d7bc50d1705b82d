"""dacapo-trainers-distributed: data-parallel training (torchrun, DDP) around any trainer.

Importing this package imports no torch; :class:`DistributedTrainer` (which does) is loaded
on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import BACKENDS, DistributedTrainerConfig
from ._errors import LaunchError, RankFailureError
from ._seeding import rank_seed

if TYPE_CHECKING:
    from ._trainer import DistributedTrainer

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "DistributedTrainer",
    "DistributedTrainerConfig",
    "LaunchError",
    "RankFailureError",
    "__version__",
    "rank_seed",
]


def __getattr__(name: str) -> Any:
    # PEP 562: keep torch out of `import dacapo_trainers_distributed`.
    if name == "DistributedTrainer":
        from ._trainer import DistributedTrainer

        return DistributedTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
