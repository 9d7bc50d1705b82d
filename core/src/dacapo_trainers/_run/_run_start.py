"""What the driver does with a model before training: checks, start weights, notes, validation.

Kept out of the driver so that it calls one function per concern:

* :func:`prepare_model` loads ``start_config``'s weights on a fresh start only, and returns
  the notes to print at run start: DaCapo fields this run sets that dacapo-trainers does not
  honour, and where the start weights came from. (Whether the data fits the model, also an
  upsampling one, is the trainer's to say: ``cannot_train_reason``/``build_batch_provider``.)
* :func:`run_validation` builds the run's :class:`~dacapo_trainers._run._validation.Validation`
  (None when the run has no validation datasets).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from .._configs._run_config import RunConfig
from ._start_weights import load_start_weights
from ._validation import Validation


def prepare_model(run: RunConfig, model: Any, *, fresh: bool) -> list[str]:
    """Load start weights into ``model`` when ``fresh``; returns the run-start notes.

    :raises ConfigError: ``start_config`` selects no usable checkpoint.
    """
    notes = list(unhonoured_fields(run))
    if run.start_config is not None:
        if fresh:
            notes.append(load_start_weights(run.start_config, model))
        else:
            notes.append("start_config is not applied: the run resumes from its own checkpoint")
    return notes


def unhonoured_fields(run: RunConfig) -> Iterator[str]:
    """One sentence per DaCapo field this run sets that dacapo-trainers does not honour.

    Configs say so through an optional ``_start_notes()`` method; the run's own fields are
    checked here.
    """
    for config in _configs(run):
        notes = getattr(config, "_start_notes", None)
        if notes is not None:
            yield from notes()
    if run.validate_configs:
        yield (
            "validation computes the task's loss on the validation datasets every "
            f"{run.validation_interval} iterations; DaCapo's prediction, post-processing, "
            "scores and best-weights selection are not done"
        )


def _configs(value: Any) -> Iterator[Any]:
    """Every attrs instance nested in ``value`` (itself included), depth first."""
    if attrs.has(type(value)):
        yield value
        for field in attrs.fields(type(value)):
            yield from _configs(getattr(value, field.name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _configs(item)


def run_validation(run: RunConfig, task: Any, model: Any) -> Validation | None:
    """The run's validation, or None without validation datasets.

    :raises ValueError: a validation dataset cannot be opened or has no gt.
    """
    configs = run.validate_configs
    if not configs:
        return None
    datasets = [config.build() for config in configs]
    return Validation(datasets, task, model, run.validation_interval)
