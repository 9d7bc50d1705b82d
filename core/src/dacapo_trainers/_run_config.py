"""The run config: what ``dacapo-trainers train`` reads (DaCapo's RunConfig keys, plus ours)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from ._config import (
    ArchitectureConfig,
    DatasetConfig,
    DataSplitConfig,
    StartConfig,
    TaskConfig,
    TrainerConfig,
)

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@attrs.define(kw_only=True)
class RunConfig:
    """One training run: which trainer, model, task and data, for how long, and where.

    The data come either from ``datasets`` (ours: a list of training datasets) or from
    ``datasplit_config`` (DaCapo's: training and validation datasets); exactly one of the two
    is given. A run file that DaCapo's config store wrote (YAML or JSON) loads unchanged.

    The run's random generators are seeded with ``seed + repetition`` (see
    :attr:`effective_seed`): repetitions of one config differ, and repetition 0 is seeded with
    ``seed`` itself.
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
    datasets: list[DatasetConfig] | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The training datasets, each selected by its '__type__' (or give "
            "datasplit_config instead)."
        },
    )
    datasplit_config: DataSplitConfig | None = attrs.field(
        default=None,
        metadata={
            "help_text": "DaCapo's datasplit: training and validation datasets, selected by its "
            "'__type__' (or give datasets instead)."
        },
    )
    num_iterations: int = attrs.field(
        metadata={"help_text": "Total number of training iterations."}
    )
    repetition: int = attrs.field(
        default=0,
        metadata={
            "help_text": "The repetition number of this run (DaCapo's); the generators are "
            "seeded with seed + repetition."
        },
    )
    validation_interval: int = attrs.field(
        default=1000,
        metadata={
            "help_text": "Compute the validation loss on the datasplit's validation datasets "
            "every this many iterations."
        },
    )
    start_config: StartConfig | None = attrs.field(
        default=None,
        metadata={
            "help_text": "Start from the weights of another run's checkpoint (a fresh start "
            "only; a resume continues from this run's own checkpoint)."
        },
    )
    checkpoint_interval: int = attrs.field(
        default=1000,
        metadata={"help_text": "Write a checkpoint every this many iterations (and at the end)."},
    )
    output: Path | None = attrs.field(
        default=None,
        metadata={"help_text": "Output directory (default: runs/<name>, relative to the cwd)."},
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
        self,
        attribute: attrs.Attribute[list[DatasetConfig] | None],
        value: list[DatasetConfig] | None,
    ) -> None:
        if value is not None and self.datasplit_config is not None:
            raise ValueError(
                "datasplit_config is given together with datasets; keep one of them "
                "(datasets: a list of training datasets; datasplit_config: DaCapo's training "
                "and validation datasets)"
            )
        if value is None and self.datasplit_config is None:
            raise ValueError(
                "datasets is missing: give datasets (a list of training datasets) or "
                "datasplit_config (DaCapo's training and validation datasets)"
            )
        if value is not None and not value:
            raise ValueError("datasets must list at least one dataset")

    @datasplit_config.validator
    def _check_datasplit(
        self, attribute: attrs.Attribute[DataSplitConfig | None], value: DataSplitConfig | None
    ) -> None:
        if value is not None and not value.train_dataset_configs():
            raise ValueError("datasplit_config must list at least one training dataset")

    @num_iterations.validator
    def _check_num_iterations(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"num_iterations must be at least 1, got {value}")

    @repetition.validator
    def _check_repetition(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"repetition must not be negative, got {value}")

    @validation_interval.validator
    def _check_validation_interval(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"validation_interval must be at least 1, got {value}")

    @checkpoint_interval.validator
    def _check_checkpoint_interval(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"checkpoint_interval must be at least 1, got {value}")

    @device.validator
    def _check_device(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not _DEVICE.match(value):
            raise ValueError(f"device must be auto, cpu, mps, cuda or cuda:N, got {value!r}")

    @property
    def effective_seed(self) -> int:
        """The seed of every generator of the run: ``seed + repetition``."""
        return self.seed + self.repetition

    @property
    def train_configs(self) -> list[DatasetConfig]:
        """The training dataset configs: ``datasets``, or the datasplit's training datasets."""
        if self.datasets is not None:
            return list(self.datasets)
        assert self.datasplit_config is not None  # the validators allow nothing else
        return self.datasplit_config.train_dataset_configs()

    @property
    def validate_configs(self) -> list[DatasetConfig]:
        """The validation dataset configs (only a datasplit has them; else empty)."""
        if self.datasplit_config is None:
            return []
        return self.datasplit_config.validate_dataset_configs()


def is_run_data(data: object) -> bool:
    """Whether plain config data looks like a run config rather than a tagged config."""
    return isinstance(data, dict) and "__type__" not in data and "trainer_config" in data
