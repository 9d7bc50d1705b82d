"""dacapo-trainers-simple-tensor: a trainer that samples batches from volumes held as tensors.

Importing this package imports no torch; :class:`SimpleTensorTrainer` (which does) is loaded
on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import OPTIMIZERS, SimpleTensorTrainerConfig

if TYPE_CHECKING:
    from ._trainer import SimpleTensorTrainer

__version__ = "0.1.0"

__all__ = [
    "OPTIMIZERS",
    "SimpleTensorTrainer",
    "SimpleTensorTrainerConfig",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # PEP 562: keep torch out of `import dacapo_trainers_simple_tensor`.
    if name == "SimpleTensorTrainer":
        from ._trainer import SimpleTensorTrainer

        return SimpleTensorTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
