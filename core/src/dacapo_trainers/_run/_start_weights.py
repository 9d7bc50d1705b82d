"""Initial weights from another run's checkpoint (DaCapo's ``StartConfig``).

The run to start from is one of ours (an output folder with ``checkpoints/iteration_*.pt``)
or DaCapo's (a run folder of its weights store, ``checkpoints/iterations/<i>``, read as
:mod:`._dacapo_weights` says). ``run`` is a folder, or a name: ``runs/<name>`` (ours) is
looked up first, then ``<runs_base_dir>/<name>`` (DaCapo's, :mod:`._dacapo_store`).

DaCapo's matching rules: the checkpoint's model weights are loaded strictly when every name
and shape matches; otherwise only the tensors whose name and shape match ("common layers")
are loaded and the rest keep their fresh initialisation. DaCapo's start loads the model's
weights only, never the optimizer's state; so does this. Unlike DaCapo, which logs and goes
on, a start that finds no run, no checkpoint or not a single matching tensor is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._contract._config import StartConfig
from .._errors import CheckpointError, ConfigError, ConfigIssue
from .._outputs._checkpoints import checkpoint_path, latest_checkpoint, load_checkpoint
from ._dacapo_store import (
    DacapoStoreError,
    is_dacapo_run_folder,
    runs_base_dir,
    weights_file,
)
from ._dacapo_weights import DacapoWeightsError, from_dacapo_names, read_dacapo_weights

CHECKPOINTS = "checkpoints"  # the driver's folder name


def _issue(path: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(path, message)])


def start_run_folder(start: StartConfig) -> Path:
    """The folder of the run to start from: ``run`` itself, ``runs/<run>``, or DaCapo's
    ``<runs_base_dir>/<run>``.

    :raises ConfigError: none of them is a run folder (ours or DaCapo's).
    """
    candidates = [Path(start.run), Path("runs") / start.run]
    searched = [repr(str(path)) for path in candidates]
    for candidate in candidates:
        if (candidate / CHECKPOINTS).is_dir():
            return candidate
    if start.run and "/" not in start.run and "\\" not in start.run:  # a name: DaCapo's too
        try:
            base = runs_base_dir()
        except DacapoStoreError as error:
            raise _issue("$.start_config.run", str(error)) from None
        if (base.path / start.run / CHECKPOINTS).is_dir():
            return base.path / start.run
        searched.append(f"{str(base.path / start.run)!r} ({base.source})")
    raise _issue(
        "$.start_config.run",
        f"no run to start from: none of {', '.join(searched)} (relative to {Path.cwd()}) "
        f"holds a {CHECKPOINTS}/ folder; give the output folder of a trained run or a DaCapo "
        "run folder, or a run's name",
    )


def start_checkpoint(start: StartConfig) -> Path:
    """The checkpoint file ``start`` selects (ours, or a DaCapo weights file).

    :raises ConfigError: the run or the checkpoint does not exist (the message lists the
        checkpoints there are).
    """
    run_folder = start_run_folder(start)
    if is_dacapo_run_folder(run_folder):
        try:
            return weights_file(run_folder, start.criterion)
        except DacapoStoreError as error:
            raise _issue("$.start_config.criterion", str(error)) from None
    folder = run_folder / CHECKPOINTS
    criterion = start.criterion.strip()
    if criterion == "latest":
        path = latest_checkpoint(folder)
    elif criterion.isdigit():
        path = checkpoint_path(folder, int(criterion))
        path = path if path.is_file() else None
    else:
        raise _issue(
            "$.start_config.criterion",
            f"unknown criterion {start.criterion!r}: use 'latest' or an iteration number "
            "(DaCapo's validation criteria such as 'voi' need its validation scores, which "
            "dacapo-trainers does not compute)",
        )
    if path is None:
        found = sorted(p.name for p in folder.glob("iteration_*.pt"))
        raise _issue(
            "$.start_config.criterion",
            f"no checkpoint {start.criterion!r} in {str(folder)!r} (it holds "
            f"{', '.join(found) if found else 'none'}); pick one of those",
        )
    return path


def start_state(path: Path, model: Any) -> dict[str, Any]:
    """The model weights of checkpoint ``path``, under ``model``'s names.

    :raises ConfigError: a DaCapo weights file that is refused or unreadable, or one of our
        checkpoints that is damaged.
    """
    if path.name.startswith("iteration_") and path.suffix == ".pt":
        try:
            return dict(load_checkpoint(path)["model"])
        except CheckpointError as error:
            raise _issue("$.start_config", str(error)) from None
    try:
        weights = read_dacapo_weights(path)
    except DacapoWeightsError as error:
        raise _issue("$.start_config", str(error)) from None
    return from_dacapo_names(model, weights.model)


def load_start_weights(start: StartConfig, model: Any) -> str:
    """Load the weights ``start`` selects into ``model``; returns what was loaded, in words.

    :raises ConfigError: no run, no checkpoint, or no tensor of the checkpoint fits the model.
    """
    path = start_checkpoint(start)
    weights = start_state(path, model)
    own = model.state_dict()
    common = {
        name: value
        for name, value in weights.items()
        if name in own and tuple(value.shape) == tuple(own[name].shape)
    }
    if len(common) == len(weights) == len(own):
        model.load_state_dict(weights, strict=True)
        return f"started from the weights of {path}"
    difference = first_difference(own, weights)
    if not common:
        raise _issue(
            "$.start_config",
            f"none of the {len(weights)} tensors in {path} matches the model by name and "
            f"shape ({difference}): that run trained another architecture; start from a run "
            "with the same architecture config",
        )
    model.load_state_dict({**own, **common}, strict=True)
    return (
        f"started from the weights of {path}: {len(common)} of the model's {len(own)} tensors "
        f"matched by name and shape (DaCapo's rule), the others keep their fresh "
        f"initialisation; {difference}"
    )


def first_difference(own: dict[str, Any], weights: dict[str, Any]) -> str:
    """The first tensor (in the model's order) whose name or shape differs, in words."""
    for name, value in own.items():
        if name not in weights:
            return f"first difference: the model's {name} is not in the checkpoint"
        theirs = tuple(weights[name].shape)
        if theirs != tuple(value.shape):
            return (
                f"first difference: {name} is {theirs} in the checkpoint and "
                f"{tuple(value.shape)} in the model"
            )
    extra = next(name for name in weights if name not in own)
    return f"first difference: the checkpoint's {extra} has no place in the model"
