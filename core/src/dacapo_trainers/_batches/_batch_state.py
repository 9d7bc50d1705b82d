"""The checkpointed state of a batch trainer, and state loaded before its pieces exist.

DaCapo (and tests) may call ``load_state_dict`` before the optimizer or the batch provider is
built; :class:`PendingState` keeps each part until its piece is created and applies it then, so
that either order resumes the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from ._precision import MixedPrecision

#: The key of the warmup schedule's state.
SCHEDULER_STATE = "scheduler"
#: The key of the fp16 loss scaler's state.
SCALER_STATE = "grad_scaler"
#: Keys of the data side (the generator and the subclass's own state): what a prefetched batch
#: has already moved on.
DATA_STATE = ("generator", "batches")


def data_state(generator: torch.Generator, batches: dict[str, Any]) -> dict[str, Any]:
    """The data side's state: the generator's and, where there is any, the subclass's."""
    state: dict[str, Any] = {"generator": generator.get_state()}
    if batches:
        state["batches"] = batches
    return state


class PendingState:
    """Loaded state whose piece does not exist yet (:attr:`parts`, by key)."""

    def __init__(self) -> None:
        self.parts: dict[str, Any] = {}

    def load(self, state: dict[str, Any]) -> None:
        """Keep the parts of a trainer's ``state_dict`` (unknown keys are left out)."""
        keys = (SCHEDULER_STATE, SCALER_STATE, *DATA_STATE)
        self.parts.update({key: state[key] for key in keys if key in state})

    def apply(
        self,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        generator: torch.Generator | None,
        load_batches: Callable[[dict[str, Any]], None],
        precision: MixedPrecision | None,
    ) -> None:
        """Apply each kept part whose piece exists (None: not yet) and forget it."""
        import torch

        parts = self.parts
        if scheduler is not None and SCHEDULER_STATE in parts:
            scheduler.load_state_dict(parts.pop(SCHEDULER_STATE))
        if generator is not None:
            if "generator" in parts:
                generator.set_state(torch.as_tensor(parts.pop("generator")).cpu())
            if "batches" in parts:
                load_batches(parts.pop("batches"))
        if precision is not None and SCALER_STATE in parts:
            precision.load_state_dict(parts.pop(SCALER_STATE))
