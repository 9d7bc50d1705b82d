"""The run config: what ``dacapo-trainers train`` reads (DaCapo's RunConfig keys, plus ours)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from .._arrays._locations import refuse_remote_output
from .._contract._config import (
    ArchitectureConfig,
    DatasetConfig,
    DataSplitConfig,
    StartConfig,
    TaskConfig,
    TrainerConfig,
)

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: The longest run name: the folder runs/<name> must fit every file system (255 bytes).
MAX_NAME_LENGTH = 128
#: The largest seed: every generator (Python, numpy, torch) and per-rank derivation takes it.
MAX_SEED = 2**63 - 1


@attrs.define(kw_only=True)
class RunConfig:
    """One training run: which trainer, model, task and data, for how long, and where.

    The data come either from ``datasets`` (ours: a list of training datasets) or from
    ``datasplit_config`` (DaCapo's: training and validation datasets); exactly one of the two
    is given. A run file that DaCapo's config store wrote (YAML or JSON) loads unchanged.

    The run's random generators are seeded with ``seed + repetition`` (see
    :attr:`effective_seed`): repetitions of one config differ, and repetition 0 is seeded with
    ``seed`` itself.

    Relative paths (``output``, dataset containers) are relative to the working directory of
    the process that trains, as for a run built in Python: a run file's paths do not depend on
    where the file lies, and the copy the driver keeps in the output folder (which the workers
    of a distributed run read) means the same files.
    """

    name: str = attrs.field(
        metadata={
            "help_text": "The run's name; the default output is runs/<name>, so it must be a "
            f"folder name (no '/', at most {MAX_NAME_LENGTH} characters)."
        }
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
        default=0,
        metadata={"help_text": f"Seed of every random generator of the run (0 to {MAX_SEED})."},
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

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str], value: str) -> None:
        problem = folder_name_problem(value)
        if problem is not None:
            raise ValueError(
                f"name {value[:40]!r}{'...' if len(value) > 40 else ''} cannot name the run's "
                f"output folder (runs/<name>): {problem}"
            )

    @output.validator
    def _check_output(self, attribute: attrs.Attribute[Path | None], value: Path | None) -> None:
        if value is not None and "\0" in str(value):
            raise ValueError("output must not contain a NUL character")
        if value is not None:
            refuse_remote_output(value, "output")

    @seed.validator
    def _check_seed(self, attribute: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED} (2**63 - 1), got {value}")

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
        if 0 <= self.seed <= MAX_SEED < self.seed + value:
            raise ValueError(
                f"repetition {value} makes the seed (seed + repetition) larger than {MAX_SEED}"
            )

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


def folder_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be one folder's name (inside the runs folder), or None."""
    if not name.strip():
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH or len(name.encode("utf-8", "replace")) > 255:
        return f"it is longer than {MAX_NAME_LENGTH} characters"
    if name in (".", ".."):
        return "'.' and '..' name no new folder"
    if "/" in name or "\\" in name:
        return "it contains a path separator ('/' or '\\'); set output to choose a folder elsewhere"
    if any(ord(character) < 32 or ord(character) == 127 for character in name):
        return "it contains a control character"
    return None
