"""The run config: what ``dacapo-trainers train`` reads (DaCapo's RunConfig keys)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from ._config import ArchitectureConfig, DatasetConfig, TaskConfig, TrainerConfig

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: The longest run name: the folder runs/<name> must fit every file system (255 bytes).
MAX_NAME_LENGTH = 128
#: The largest seed: every generator (Python, numpy, torch) and per-rank derivation takes it.
MAX_SEED = 2**63 - 1


@attrs.define(kw_only=True)
class RunConfig:
    """One training run: which trainer, model, task and datasets, for how long, and where.

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

    @seed.validator
    def _check_seed(self, attribute: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED} (2**63 - 1), got {value}")

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
