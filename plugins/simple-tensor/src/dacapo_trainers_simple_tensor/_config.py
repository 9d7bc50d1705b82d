"""The config of the simple tensor trainer. Imports no torch: validating a config stays cheap."""

from __future__ import annotations

from typing import ClassVar

import attrs

from dacapo_trainers import TrainerConfig

#: The optimizers ``SimpleTensorTrainerConfig.optimizer`` accepts: classes of ``torch.optim``.
OPTIMIZERS: tuple[str, ...] = ("RAdam", "Adam", "AdamW", "SGD")


@attrs.define(kw_only=True)
class SimpleTensorTrainerConfig(TrainerConfig):
    """A trainer that holds every training volume in memory as tensors, without gunpowder.

    Raw, target, weight and mask of each dataset are read whole once; the target and weight
    are computed once on the whole volume by the task's predictor. Each step then draws random
    crops by tensor slicing, applies random flips and transposes, and runs one optimizer step,
    so the data pipeline costs next to nothing next to the network. It suits datasets that fit
    in memory (see ``memory_budget_gb``); for larger data or richer augmentations use
    ``GunpowderTrainerConfig``.
    """

    trainer_type: ClassVar[str] = "dacapo_trainers_simple_tensor._trainer:SimpleTensorTrainer"

    snapshot_interval: int | None = attrs.field(
        default=None,
        metadata={
            "help_text": "Write a snapshot (raw, gt, target, weight, prediction, mask of a batch) "
            "after every this many iterations, i.e. after iteration i when (i + 1) is a "
            "multiple of it. None: no snapshots."
        },
    )
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
    warmup_iterations: int = attrs.field(
        default=1000,
        metadata={
            "help_text": "Iterations of linear learning-rate warmup, from warmup_start_factor "
            "times the learning rate up to the learning rate (0: no warmup)."
        },
    )
    warmup_start_factor: float = attrs.field(
        default=0.01,
        metadata={"help_text": "Fraction of the learning rate that the warmup starts from."},
    )
    memory_budget_gb: float = attrs.field(
        default=4.0,
        metadata={
            "help_text": "The most memory (GB) the in-memory volumes may take (raw, target, "
            "weight and mask as float32); datasets that need more are refused."
        },
    )

    @snapshot_interval.validator
    def _check_snapshot_interval(
        self, attribute: attrs.Attribute[int | None], value: int | None
    ) -> None:
        if value is not None and value < 1:
            raise ValueError(f"snapshot_interval must be at least 1 or None, got {value}")

    @optimizer.validator
    def _check_optimizer(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {value!r}")

    @weight_decay.validator
    def _check_weight_decay(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 <= value <= 1:  # also refuses NaN and inf
            raise ValueError(f"weight_decay must be at least 0 and at most 1, got {value}")

    @warmup_iterations.validator
    def _check_warmup_iterations(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"warmup_iterations must be at least 0, got {value}")

    @warmup_start_factor.validator
    def _check_warmup_start_factor(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 < value <= 1:
            raise ValueError(f"warmup_start_factor must be in (0, 1], got {value}")

    @memory_budget_gb.validator
    def _check_memory_budget(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"memory_budget_gb must be positive, got {value}")
