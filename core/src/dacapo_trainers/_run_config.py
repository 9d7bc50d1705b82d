"""The run config: what ``dacapo-trainers train`` reads (DaCapo's RunConfig keys)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from ._config import ArchitectureConfig, DatasetConfig, TaskConfig, TrainerConfig

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@attrs.define(kw_only=True)
class RunConfig:
    """One training run: which trainer, model, task and datasets, for how long, and where.

    Relative paths in a run file (``output``, dataset containers) are relative to the directory
    of that file.
    """

    name: str = attrs.field(
        metadata={"help_text": "The run's name; the default output is runs/<name>."}
    )
    trainer_config: TrainerConfig = attrs.field(
        metadata={"help_text": "The trainer, selected by its '__type__'."}
    )
    architecture_config: ArchitectureConfig = attrs.field(
        metadata={"help_text": "The network architecture, selected by its '__type__'."}
    )
    task_config: TaskConfig = attrs.field(
        metadata={"help_text": "The task (target, weight, loss), selected by its '__type__'."}
    )
    datasets: list[DatasetConfig] = attrs.field(
        metadata={"help_text": "The training datasets, each selected by its '__type__'."}
    )
    num_iterations: int = attrs.field(
        metadata={"help_text": "Total number of training iterations."}
    )
    checkpoint_interval: int = attrs.field(
        default=1000,
        metadata={"help_text": "Write a checkpoint every this many iterations (and at the end)."},
    )
    output: Path | None = attrs.field(
        default=None,
        metadata={"help_text": "Output directory (default: runs/<name> next to the run file)."},
    )
    seed: int = attrs.field(
        default=0, metadata={"help_text": "Seed of every random generator of the run."}
    )
    device: str = attrs.field(
        default="auto",
        metadata={"help_text": "auto (cuda if available, else cpu), cpu, mps, cuda or cuda:N."},
    )
    tensorboard: bool = attrs.field(
        default=False,
        metadata={
            "help_text": "Also log to <output>/tensorboard (losses, learning rate, step time, "
            "snapshot previews); needs pip install 'dacapo-trainers[tensorboard]'."
        },
    )

    @datasets.validator
    def _check_datasets(
        self, attribute: attrs.Attribute[list[DatasetConfig]], value: list[DatasetConfig]
    ) -> None:
        if not value:
            raise ValueError("datasets must list at least one dataset")

    @num_iterations.validator
    def _check_num_iterations(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"num_iterations must be at least 1, got {value}")

    @checkpoint_interval.validator
    def _check_checkpoint_interval(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"checkpoint_interval must be at least 1, got {value}")

    @device.validator
    def _check_device(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not _DEVICE.match(value):
            raise ValueError(f"device must be auto, cpu, mps, cuda or cuda:N, got {value!r}")


def is_run_data(data: object) -> bool:
    """Whether plain config data looks like a run config rather than a tagged config."""
    return isinstance(data, dict) and "__type__" not in data and "trainer_config" in data
