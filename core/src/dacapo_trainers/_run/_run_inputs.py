"""A run's inputs, opened and checked before anything is written: trainer, data, device, model.

Every failure here is the config's or the data's, so each becomes a :class:`ConfigError` naming
the config path (``$.datasets[0]``, ``$.architecture_config``) and the plugin that raised, or
the trainer's :class:`CannotTrainError`. Nothing is written to the output folder before these
checks pass, so a user who fixes a path or a shape trains the same run again.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from .._arrays._chunk_reads import label_dataset_reads
from .._configs._duplicates import duplicate_dataset_names
from .._configs._run_config import RunConfig
from .._contract._models import build_model
from .._contract._trainer import Trainer
from .._errors import (
    CannotTrainError,
    ConfigError,
    ConfigIssue,
    DacapoTrainersError,
    raised_in,
)
from .._plugins._registry import Registry
from ._input_checks import data_issues, memory_issue

T = TypeVar("T")
_ARRAYS = ("raw", "gt", "mask")
_DATASET_FIX = (
    ". Check the dataset's container and array paths (relative paths are relative to the "
    "working directory) and the arrays' voxel_size and offset attributes"
)


@attrs.define
class RunInputs:
    """What :func:`open_inputs` opened: the datasets, the task, the model (on the CPU)."""

    datasets: list[Any]
    task: Any
    model: Any
    device: Any


def build_trainer(run: RunConfig, registry: Registry, source: str | None) -> Trainer:
    """The trainer of ``run.resolved_trainer_config()`` (the run-level settings applied);
    a failure names ``$.trainer_config``."""
    config = run.resolved_trainer_config()
    return _built("$.trainer_config", config, registry, source, config.build_trainer)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> Any:
    """A ``torch.device`` for ``auto``/``cpu``/``mps``/``cuda``/``cuda:N``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            [ConfigIssue("$.device", f"{name!r} requested but CUDA is not available")]
        )
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ConfigError(
            [
                ConfigIssue(
                    "$.device",
                    f"{name!r} requested but this machine has {torch.cuda.device_count()} "
                    "CUDA device(s)",
                )
            ]
        )
    return torch.device(name)


def open_inputs(
    run: RunConfig, trainer: Trainer, registry: Registry, source: str | None
) -> RunInputs:
    """Seed, open the datasets, ask the trainer, build task and model, ask the trainer again
    with the model (order of the driver).

    :raises ConfigError: a dataset, the architecture or the task cannot be built (the issue
        names its config path), or a dataset's weight or geometry is unusable.
    :raises CannotTrainError: the trainer refused the datasets.
    """
    duplicates = duplicate_dataset_names(run)  # a run built in Python, not read from a file
    if duplicates:
        raise ConfigError(duplicates, source)
    seed_everything(run.effective_seed)
    trainer.seed = run.effective_seed
    datasets = open_datasets(run, registry, source)
    reason = trainer.cannot_train_reason(datasets)
    if reason is None and not trainer.can_train(datasets):
        reason = "it gave no reason"
    _refuse(run, reason)
    device = resolve_device(run.device)
    task, model = build_task_and_model(run, registry, source)
    # What no trainer can train on, checked here so that validate --inputs says it too.
    paths = [path for path, _ in dataset_configs(run)]
    issues = data_issues(datasets, paths, model)
    batch_size = run.resolved_trainer_config().batch_size  # run-level settings applied
    memory = memory_issue(batch_size, model, device)
    issues += [memory] if memory is not None else []
    if issues:
        raise ConfigError(issues, source)
    _refuse(run, trainer.cannot_train_model_reason(datasets, model, task))
    return RunInputs(datasets, task, model, device)


def _refuse(run: RunConfig, reason: str | None) -> None:
    """Raise the CannotTrainError of the trainer's ``reason`` (None: nothing to refuse)."""
    if reason is None:
        return
    names = ", ".join(repr(d.name) for _, d in dataset_configs(run))
    raise CannotTrainError(
        f"{type(run.trainer_config).__name__} {run.trainer_config.name!r} cannot train "
        f"on datasets {names}: {reason}"
    )


def open_datasets(run: RunConfig, registry: Registry, source: str | None) -> list[Any]:
    """The run's training datasets, opened and checked (:func:`check_datasets`).

    :raises ConfigError: a dataset cannot be opened or is unusable (its config path named).
    """
    paths = dataset_configs(run)
    datasets = [
        _built(path, config, registry, source, config.build, "cannot be opened", _DATASET_FIX)
        for path, config in paths
    ]
    issues = check_datasets(datasets, [path for path, _ in paths])
    if issues:
        raise ConfigError(issues, source)
    for dataset in datasets:  # a chunk that fails to read later names its dataset and array
        label_dataset_reads(dataset)
    return datasets


def build_task_and_model(run: RunConfig, registry: Registry, source: str | None) -> tuple[Any, Any]:
    """The run's task and its model (on the CPU, initialised from torch's global generator).

    :raises ConfigError: the architecture, the task or the model cannot be built.
    """
    architecture_config, task_config = run.architecture_config, run.task_config
    architecture = _built(
        "$.architecture_config", architecture_config, registry, source, architecture_config.build
    )
    task = _built("$.task_config", task_config, registry, source, task_config.build)
    model = _built(
        "$.architecture_config",
        architecture_config,
        registry,
        source,
        lambda: build_model(task, architecture),
        doing=f"the model of task {task_config.name!r} cannot be built from it",
    )
    return task, model


def dataset_configs(run: RunConfig) -> list[tuple[str, Any]]:
    """The training dataset configs with their config paths: ``run.datasets``, or the
    training datasets of DaCapo's ``datasplit_config``."""
    if run.datasets is not None:
        prefix = "$.datasets"
    elif hasattr(run.datasplit_config, "train_configs"):  # TrainValidateDataSplitConfig
        prefix = "$.datasplit_config.train_configs"
    else:
        prefix = "$.datasplit_config (training datasets)"
    return [(f"{prefix}[{index}]", config) for index, config in enumerate(run.train_configs)]


def check_datasets(datasets: Sequence[Any], paths: Sequence[str]) -> list[ConfigIssue]:
    """What makes the opened datasets unusable for any trainer: weights that are negative,
    infinite or all zero; voxel sizes that are not positive and finite; offsets that are not
    finite."""
    issues = []
    weights = []
    for path, dataset in zip(paths, datasets, strict=True):
        weight = getattr(dataset, "weight", 1.0)
        if not (isinstance(weight, (int, float)) and 0 <= weight < math.inf):
            issues.append(ConfigIssue(path, f"its weight is {weight!r}; give a finite number >= 0"))
        else:
            weights.append(weight)
        for role in _ARRAYS:
            array = getattr(dataset, role, None)
            if array is not None:
                problem = _geometry_problem(array)
                if problem is not None:
                    issues.append(ConfigIssue(path, f"its {role} array {problem}"))
    if not issues and weights and not any(weights):
        where = paths[0].rpartition("[")[0] if paths else "$.datasets"
        issues.append(ConfigIssue(where, "every dataset has weight 0: there is nothing to sample"))
    return issues


def _geometry_problem(array: Any) -> str | None:
    try:
        voxel_size = [float(v) for v in array.voxel_size]
        offset = [float(v) for v in array.offset]
    except (TypeError, ValueError, AttributeError) as error:
        return f"has no usable voxel_size/offset ({error})"
    dimensions = len(getattr(array.data, "shape", voxel_size))
    if not 0 < len(voxel_size) <= dimensions:
        return (
            f"has voxel size {list(array.voxel_size)} for data of {dimensions} dimensions; "
            "give one voxel size per spatial axis (the voxel_size/resolution attribute)"
        )
    if not all(0 < v < math.inf for v in voxel_size):
        return (
            f"has voxel size {list(array.voxel_size)}; every voxel size must be a finite number "
            "> 0 (the array's voxel_size/resolution attribute)"
        )
    if not all(math.isfinite(v) for v in offset):
        return f"has offset {list(array.offset)}; an offset must be finite"
    if len(offset) != len(voxel_size):
        return f"has {len(voxel_size)} voxel size entries but {len(offset)} offset entries"
    return None


def _built(
    path: str,
    config: Any,
    registry: Registry,
    source: str | None,
    build: Callable[[], T],
    doing: str = "cannot be built",
    fix: str = "",
) -> T:
    """``build()``; a failure becomes a ConfigError at ``path`` naming the config's plugin."""
    try:
        return build()
    except DacapoTrainersError:
        raise
    except ValueError as error:  # the documented way for a config to refuse what it finds
        message = f"{describe(config, registry)} {doing}: {_reason(error, config)}"
        raise ConfigError([ConfigIssue(path, message + fix)], source) from error
    except Exception as error:  # a plugin's bug or an unexpected library error
        message = (
            f"{describe(config, registry)} {doing}: unexpected {type(error).__name__}: "
            f"{_reason(error, config)} (raised in {raised_in(error)}; --debug shows the "
            "traceback)"
        )
        raise ConfigError([ConfigIssue(path, message + fix, error)], source) from error


def describe(config: Any, registry: Registry) -> str:
    """``"ZarrDatasetConfig 'demo' (dacapo-trainers 0.1.0)"``: type, name and distribution."""
    type_name = type(config).__name__
    record = next((r for r in registry.records() if r.type_name == type_name), None)
    name = getattr(config, "name", None)
    named = f" {name!r}" if name is not None else ""
    return f"{type_name}{named} ({record.label if record else 'registered at run time'})"


def _reason(error: BaseException, config: Any) -> str:
    """The error's message on one line, without a repeated ``"TypeName 'name': "`` prefix."""
    text = " ".join(str(error).split())[:600] or type(error).__name__
    prefix = f"{type(config).__name__} {getattr(config, 'name', None)!r}: "
    return text.removeprefix(prefix).rstrip(".")
