"""The config of the gunpowder trainer. Imports neither torch nor gunpowder."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import attrs

from dacapo_trainers import BatchTrainerConfig

from ._augment_configs import AugmentConfig

#: The default ``sample_strategy``: DaCapo 0.3.5's rule (DaCapo main has no such value).
DACAPO_0_3_5 = "dacapo-0.3.5"
#: The values of ``sample_strategy``: DaCapo main's four, and DaCapo 0.3.5's rule.
SAMPLE_STRATEGIES: tuple[str | None, ...] = (
    DACAPO_0_3_5,
    "integral_mask",
    "reject",
    "sample_points",
    None,
)


@attrs.define(kw_only=True)
class GunpowderTrainerConfig(BatchTrainerConfig):
    """DaCapo's GunpowderTrainer: random crops through a gunpowder pipeline, in worker processes.

    Each sample is a random location of a dataset (datasets drawn by their ``weight``) whose
    centre output voxel is masked (and, with ``gt_min_reject``, whose output crop has a mean
    gt value above it), as DaCapo 0.3.5 draws them; then the augments in order, then the
    task's target and weight. ``num_data_fetchers`` worker processes
    produce whole batches ahead of the training step, so data production overlaps the network
    from the first iteration.

    DaCapo 0.3.5's fields, with its defaults: ``snapshot_interval`` (from
    :class:`~dacapo_trainers.BatchTrainerConfig`), ``num_data_fetchers``, ``augments``,
    ``min_masked`` (kept but unused, as in DaCapo), ``clip_raw`` and ``gt_min_reject``.
    Additions, with DaCapo's behaviour as default: ``warmup_iterations`` and
    ``warmup_start_factor`` (from ``BatchTrainerConfig``), ``min_masked_fraction``,
    ``min_gt_fraction``, ``prefetch_batches`` and ``preload_limit_mb``.

    DaCapo main's shape loads too: its ``sample_strategy`` (DaCapo 0.3.5's rule where a file
    has no such key), and a run's ``num_workers`` sets ``num_data_fetchers``.
    """

    trainer_type: ClassVar[str] = "dacapo_trainers_gunpowder._trainer:GunpowderTrainer"
    #: DaCapo main's run-level ``num_workers`` sets the data worker processes.
    run_fields: ClassVar[Mapping[str, str]] = {
        **BatchTrainerConfig.run_fields,
        "num_workers": "num_data_fetchers",
    }

    num_data_fetchers: int = attrs.field(
        default=5,
        metadata={
            "help_text": "The number of cpu workers who will focus on fetching/processing data "
            "so that it is ready when the gpu needs it. Each worker process produces whole "
            "batches; 0 produces them in the training process itself (for debugging)."
        },
    )
    augments: list[AugmentConfig] = attrs.field(
        factory=list,
        metadata={"help_text": "The augments to apply during training, in this order."},
    )
    min_masked: float | None = attrs.field(
        default=0.15,
        metadata={
            "help_text": "Kept for DaCapo JSON; not used, as in DaCapo 0.3.5, where a sample "
            "only needs the centre voxel of its output to be masked (nonzero in the dataset's "
            "mask, inside its gt without one). For a fraction of the output crop, use "
            "min_masked_fraction."
        },
    )
    sample_strategy: str | None = attrs.field(
        default=DACAPO_0_3_5,
        metadata={
            "help_text": "Where samples are centred, with DaCapo main's values: "
            "'integral_mask' or 'reject' (every voxel of the output centre masked; drawn "
            "exactly here, so the two are the same), 'sample_points' (a random one of the "
            "dataset's sample_points, mask not consulted), null (anywhere with the output "
            f"centre inside the mask's region). The default, {DACAPO_0_3_5!r} (a file "
            "without the key): DaCapo 0.3.5's rule, some voxel of the output centre masked, "
            "on the dataset's sample_points where it has them."
        },
    )
    clip_raw: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Use raw only inside the region of the gt (zero outside), for raw "
            "that extends well beyond its annotations."
        },
    )
    gt_min_reject: float | None = attrs.field(
        default=None,
        metadata={
            "help_text": "If set, a sample's mean gt value over its output crop (all channels, "
            "zero outside the gt) must be above this (DaCapo's gunpowder.Reject on gt). For "
            "binary gt that is the fraction of foreground; for instance labels it is the mean "
            "label id. For a fraction of nonzero gt, use min_gt_fraction."
        },
    )
    min_masked_fraction: float | None = attrs.field(
        default=None,
        metadata={
            "help_text": "If set, also the smallest fraction of a sample's output crop inside "
            "the dataset's mask (inside its gt without one); not in DaCapo. None: off."
        },
    )
    min_gt_fraction: float | None = attrs.field(
        default=None,
        metadata={
            "help_text": "If set, also the smallest fraction of a sample's output crop where "
            "gt is nonzero (any channel); not in DaCapo. None: off."
        },
    )
    prefetch_batches: int = attrs.field(
        default=2,
        metadata={
            "help_text": "Batches each data worker may produce ahead of the training step "
            "(shared-memory slots per worker)."
        },
    )
    preload_limit_mb: float = attrs.field(
        default=64.0,
        metadata={
            "help_text": "The most memory (MB) the data read into memory before the workers "
            "start may take, all datasets together; the workers share it. Arrays are taken in "
            "dataset order while they fit (of raw, only the region samples can reach); the "
            "rest is read from disk per sample. 0: read everything per sample."
        },
    )

    @num_data_fetchers.validator
    def _check_num_data_fetchers(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"num_data_fetchers must be at least 0, got {value}")

    @sample_strategy.validator
    def _check_sample_strategy(
        self, attribute: attrs.Attribute[str | None], value: str | None
    ) -> None:
        if value not in SAMPLE_STRATEGIES:
            choices = ", ".join("null" if s is None else repr(s) for s in SAMPLE_STRATEGIES)
            raise ValueError(f"sample_strategy must be one of {choices}; got {value!r}")

    @min_masked.validator
    def _check_min_masked(
        self, attribute: attrs.Attribute[float | None], value: float | None
    ) -> None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"min_masked must be in [0, 1], got {value}")

    @gt_min_reject.validator
    def _check_gt_min_reject(
        self, attribute: attrs.Attribute[float | None], value: float | None
    ) -> None:
        if value is not None and not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"gt_min_reject must be at least 0 or None, got {value}")

    @min_masked_fraction.validator
    @min_gt_fraction.validator
    def _check_fraction(
        self, attribute: attrs.Attribute[float | None], value: float | None
    ) -> None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{attribute.name} must be in [0, 1] or None, got {value}")

    @prefetch_batches.validator
    def _check_prefetch_batches(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"prefetch_batches must be at least 1, got {value}")

    @preload_limit_mb.validator
    def _check_preload_limit(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= 0:
            raise ValueError(f"preload_limit_mb must be at least 0, got {value}")
