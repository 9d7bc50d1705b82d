"""The config base of batch trainers: the settings :class:`~dacapo_trainers.BatchTrainer` owns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs

from .._contract._config import TrainerConfig
from ._precision import PRECISIONS


@attrs.define(kw_only=True)
class BatchTrainerConfig(TrainerConfig):
    """Base of the configs of :class:`~dacapo_trainers.BatchTrainer` subclasses.

    On top of DaCapo's ``name``, ``batch_size`` and ``learning_rate`` it holds what the batch
    trainer base implements for every subclass: DaCapo's snapshots (``snapshot_interval``),
    DaCapo's linear learning-rate warmup (``warmup_iterations``, ``warmup_start_factor``, with
    DaCapo's values as defaults) and how the step runs on the device (``precision``,
    ``compile``, ``channels_last_3d``; DaCapo has none of them, and their defaults keep its
    plain float32 eager step). A subclass adds its own data settings and sets ``trainer_type``.
    """

    run_fields: ClassVar[Mapping[str, str]] = {
        **TrainerConfig.run_fields,
        "snapshot_interval": "snapshot_interval",
    }

    snapshot_interval: int | None = attrs.field(
        default=None,
        metadata={
            "help_text": "Write a snapshot (sample 0 of the batch: raw, gt, target, weight, "
            "prediction, gradients, mask) after the step of every iteration i with "
            "i % snapshot_interval == 0 (iterations 0, N, 2N, ..., as DaCapo), to "
            "<iteration>/volumes/<name> of the run's snapshots.zarr. None: no snapshots."
        },
    )
    warmup_iterations: int = attrs.field(
        default=1000,
        metadata={
            "help_text": "Iterations of linear learning-rate warmup from warmup_start_factor "
            "times the learning rate up to the learning rate (DaCapo: 1000; 0: no warmup)."
        },
    )
    warmup_start_factor: float = attrs.field(
        default=0.01,
        metadata={
            "help_text": "Fraction of the learning rate that the warmup starts from (DaCapo: 0.01)."
        },
    )

    precision: str = attrs.field(
        default="32",
        metadata={
            "help_text": "Precision of the step's forward and loss: '32' (float32, as DaCapo), "
            "'bf16' (torch.autocast to bfloat16 on the training device) or 'fp16' (autocast "
            "to float16, with a torch.amp.GradScaler whose state the checkpoints keep). "
            "Parameters, gradients and the optimizer stay float32. A device that cannot "
            "autocast to the chosen type stops the run before its first step. A string: "
            "write '32' quoted in YAML."
        },
    )
    compile: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Run the step's forward through torch.compile(model). The first "
            "iterations are slower (compilation); checkpoints keep the model's own "
            "state_dict (no _orig_mod. keys), so a run resumes with or without it."
        },
    )
    channels_last_3d: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Put the model's 5-D weights and the raw batch in the "
            "channels_last_3d memory format (3-D convolutions on CUDA with cuDNN, mostly "
            "with bf16/fp16; on the CPU it often costs more than it gains)."
        },
    )

    @snapshot_interval.validator
    def _check_snapshot_interval(
        self, attribute: attrs.Attribute[int | None], value: int | None
    ) -> None:
        if value is not None and value < 1:
            raise ValueError(f"snapshot_interval must be at least 1 or None, got {value}")

    @warmup_iterations.validator
    def _check_warmup_iterations(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"warmup_iterations must be at least 0, got {value}")

    @warmup_start_factor.validator
    def _check_warmup_start_factor(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 < value <= 1:
            raise ValueError(f"warmup_start_factor must be in (0, 1], got {value}")

    @precision.validator
    def _check_precision(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(repr(p) for p in PRECISIONS)}, got {value!r}"
            )
