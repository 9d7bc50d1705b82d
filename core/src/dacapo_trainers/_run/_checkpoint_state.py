"""What a checkpoint holds beyond the weights (the run's identity), and restoring one.

The training loop writes :func:`run_identity` into every checkpoint, so that the folder's
run can be told apart from another even without ``run_config.json``
(:mod:`dacapo_trainers._outputs._run_identity`). :func:`restore_checkpoint` loads a
checkpoint's states into the model, optimizer and trainer; a checkpoint of another model is a
:class:`CheckpointError` that says so, since running the same command again would fail alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._configs._converter import ConfigConverter
from .._configs._run_config import RunConfig
from .._contract._trainer import Trainer
from .._errors import CheckpointError, flat_message
from .._outputs._checkpoints import restore_random_states
from .._outputs._run_identity import identity_text
from .._plugins._registry import Registry


def run_identity(run: RunConfig, registry: Registry) -> str:
    """The text a checkpoint of ``run`` records as its identity (its normalized config)."""
    return identity_text(ConfigConverter(registry).unstructure(run))


def restore_checkpoint(
    path: Path, state: dict[str, Any], model: Any, optimizer: Any, trainer: Trainer
) -> int:
    """Load ``state`` (read from ``path``) into the model, optimizer and trainer, and restore
    the random states; the completed iteration count.

    :raises CheckpointError: the checkpoint holds the weights of another model (another
        architecture than the run's), or an optimizer state that does not fit.
    """
    for what, target in (("model", model), ("optimizer", optimizer)):
        try:
            target.load_state_dict(state[what])
        except (RuntimeError, ValueError, KeyError) as error:
            raise CheckpointError(
                f"checkpoint {path} cannot be loaded into this run's {what}: "
                f"{flat_message(error, limit=400)}. It was written by a "
                "run with another architecture (or another trainer), so running the same "
                "command again fails alike. Train this architecture in another output (or "
                "under another name), or restore the architecture that wrote the checkpoint; "
                "every checkpoint is kept as it was"
            ) from None
    trainer.load_state_dict(state["trainer"])
    trainer.iteration = int(state["iteration"])
    restore_random_states(state["random"])
    return trainer.iteration
