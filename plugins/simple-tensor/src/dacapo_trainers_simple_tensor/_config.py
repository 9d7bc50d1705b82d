"""The config of the simple tensor trainer. Imports no torch: validating a config stays cheap."""

from __future__ import annotations

from typing import ClassVar

import attrs

from dacapo_trainers import BatchTrainerConfig

#: The optimizers ``SimpleTensorTrainerConfig.optimizer`` accepts: classes of ``torch.optim``.
OPTIMIZERS: tuple[str, ...] = ("RAdam", "Adam", "AdamW", "SGD")


@attrs.define(kw_only=True)
class SimpleTensorTrainerConfig(BatchTrainerConfig):
    """A trainer that holds every training volume in memory as tensors, without gunpowder.

    gt and mask of each dataset are read whole once, and of raw the region samples can reach
    (the gt's region grown by the model's context), kept at the dataset's dtype; the target
    and weight are computed once on the whole gt by the task's predictor. Each step then draws
    random crops by tensor slicing (raw cast to float32 per crop), applies random flips and
    transposes, and runs one optimizer step, so the data pipeline costs next to nothing next
    to the network. It suits datasets that fit
    in memory (see ``memory_budget_gb``); for larger data or richer augmentations use
    ``GunpowderTrainerConfig``.

    ``snapshot_interval``, ``warmup_iterations`` and ``warmup_start_factor`` come from
    :class:`~dacapo_trainers.BatchTrainerConfig`.
    """

    trainer_type: ClassVar[str] = "dacapo_trainers_simple_tensor._trainer:SimpleTensorTrainer"

    flips: bool = attrs.field(
        default=True,
        metadata={
            "help_text": "Randomly mirror each sample along each spatial axis (raw, target, "
            "weight and mask alike)."
        },
    )
    transposes: bool = attrs.field(
        default=True,
        metadata={
            "help_text": "Randomly permute spatial axes that have the same voxel size and the "
            "same model input and output sizes (raw, target, weight and mask alike)."
        },
    )
    optimizer: str = attrs.field(
        default="RAdam",
        metadata={"help_text": f"The torch optimizer: one of {', '.join(OPTIMIZERS)}."},
    )
    weight_decay: float = attrs.field(
        default=0.0, metadata={"help_text": "Weight decay of the optimizer (0: none)."}
    )
    memory_budget_gb: float = attrs.field(
        default=4.0,
        metadata={
            "help_text": "The most memory (GB) the in-memory volumes may take (raw where "
            "samples reach it at its dtype, gt and mask at theirs, target and weight as "
            "float32); datasets that need more are refused."
        },
    )

    @optimizer.validator
    def _check_optimizer(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {value!r}")

    @weight_decay.validator
    def _check_weight_decay(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 <= value <= 1:  # also refuses NaN and inf
            raise ValueError(f"weight_decay must be at least 0 and at most 1, got {value}")

    @memory_budget_gb.validator
    def _check_memory_budget(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"memory_budget_gb must be positive, got {value}")
