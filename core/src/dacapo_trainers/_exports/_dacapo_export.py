"""Export a run's weights to DaCapo 0.3.5's weights store, for DaCapo's validation and
prediction.

The file is ``<runs_base_dir>/<run name>/checkpoints/iterations/<iteration>``, as DaCapo's
``LocalWeightsStore.store_weights`` writes it: a ``Weights`` object whose ``model`` holds the
model's tensors under DaCapo's names (``chain.*`` included, see
:mod:`dacapo_trainers._run._dacapo_weights`) and whose ``optimizer`` is the run's optimizer
state as the trainer saved it (DaCapo reads it only to go on training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from .._configs._loading import load_config
from .._configs._run_config import RunConfig
from .._contract._models import build_model
from .._errors import ConfigError, ConfigIssue
from .._outputs._checkpoints import checkpoint_path, checkpoints, iteration_of, load_checkpoint
from .._outputs._output_folder import CHECKPOINTS, RUN_CONFIG_COPY
from .._run._dacapo_store import ITERATIONS
from .._run._dacapo_weights import to_dacapo_names
from .._run._driver import output_folder
from ._dacapo_weights_file import write_dacapo_weights


@attrs.define(frozen=True)
class ExportSource:
    """A run to export: its config and its output folder."""

    run: RunConfig
    folder: Path


def export_source(source: Path) -> ExportSource:
    """The run behind ``source``: an output folder (its ``run_config.json``) or a run file
    (its output folder as ``train`` chooses it).

    :raises ConfigError: neither, or a run file that does not load.
    """
    if source.is_dir():
        copy = source / RUN_CONFIG_COPY
        if not copy.is_file():
            raise ConfigError(
                [
                    ConfigIssue(
                        "RUN",
                        f"{str(source)!r} is a folder without {RUN_CONFIG_COPY}: give the "
                        "output folder of a run that trained, or its run file",
                    )
                ]
            )
        return ExportSource(load_config(copy, RunConfig), source)
    if not source.is_file():
        raise ConfigError(
            [ConfigIssue("RUN", f"{str(source)!r} is neither a run folder nor a run file")]
        )
    run = load_config(source, RunConfig)
    return ExportSource(run, output_folder(run))


def chosen_checkpoint(folder: Path, iteration: int | None) -> Path:
    """The checkpoint of ``iteration`` (default: the latest) in a run's output folder.

    :raises ConfigError: there is none (the message lists those there are).
    """
    stored = checkpoints(folder / CHECKPOINTS)
    if iteration is None and stored:
        return stored[-1]
    if iteration is not None and checkpoint_path(folder / CHECKPOINTS, iteration) in stored:
        return checkpoint_path(folder / CHECKPOINTS, iteration)
    held = ", ".join(str(iteration_of(path)) for path in stored) or "none"
    wanted = "a checkpoint" if iteration is None else f"a checkpoint of iteration {iteration}"
    raise ConfigError(
        [
            ConfigIssue(
                "--iteration" if iteration is not None else "RUN",
                f"run folder {str(folder)!r} holds no {wanted.removeprefix('a ')} "
                f"(iterations held: {held}); train it first, or pick one of those",
            )
        ]
    )


def export_dacapo(
    source: Path,
    runs_base_dir: Path,
    *,
    iteration: int | None = None,
    run_name: str | None = None,
) -> Path:
    """Write a run's checkpoint as DaCapo's weights file; returns its path.

    :raises ConfigError: no such run or checkpoint, a run config whose model does not match
        the checkpoint, or a DaCapo file that exists already (it is never overwritten).
    :raises CheckpointError: the checkpoint is damaged.
    """
    found = export_source(source)
    path = chosen_checkpoint(found.folder, iteration)
    state = load_checkpoint(path)
    name = run_name or found.run.name
    target = runs_base_dir / name / ITERATIONS / str(iteration_of(path))
    if target.exists():
        raise ConfigError(
            [
                ConfigIssue(
                    "--dacapo",
                    f"{target} exists already and is not overwritten: remove it, or give "
                    "another --run-name",
                )
            ]
        )
    model = _model_with(found.run, state["model"], path)
    return write_dacapo_weights(
        target, to_dacapo_names(model, model.state_dict()), state["optimizer"]
    )


def _model_with(run: RunConfig, weights: dict[str, Any], path: Path) -> Any:
    """The run's model (task head included) holding ``weights``, which must fit it exactly."""
    model = build_model(run.task_config.build(), run.architecture_config.build())
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise ConfigError(
            [
                ConfigIssue(
                    "$.architecture_config",
                    f"checkpoint {path} does not fit the model of the run config "
                    f"({' '.join(str(error).split())[:400]}); was the config changed after "
                    "training?",
                )
            ]
        ) from None
    return model
