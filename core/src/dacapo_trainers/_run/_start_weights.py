"""Initial weights from another run's checkpoint (DaCapo's ``StartConfig``).

DaCapo's matching rules: the checkpoint's model weights are loaded strictly when every name
and shape matches; otherwise only the tensors whose name and shape match ("common layers")
are loaded and the rest keep their fresh initialisation. Unlike DaCapo, which logs and goes
on, a start that finds no run, no checkpoint or not a single matching tensor is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._contract._config import StartConfig
from .._errors import ConfigError, ConfigIssue
from .._outputs._checkpoints import checkpoint_path, latest_checkpoint, load_checkpoint

CHECKPOINTS = "checkpoints"  # the driver's folder name


def start_run_folder(start: StartConfig) -> Path:
    """The output folder of the run to start from: ``run`` itself, or ``runs/<run>``.

    :raises ConfigError: neither holds a ``checkpoints`` folder.
    """
    for candidate in (Path(start.run), Path("runs") / start.run):
        if (candidate / CHECKPOINTS).is_dir():
            return candidate
    raise ConfigError(
        [
            ConfigIssue(
                "$.start_config.run",
                f"no run to start from: neither {start.run!r} nor "
                f"{str(Path('runs') / start.run)!r} (relative to {Path.cwd()}) holds a "
                f"{CHECKPOINTS}/ folder; give the output folder of a trained run, or its name",
            )
        ]
    )


def start_checkpoint(start: StartConfig) -> Path:
    """The checkpoint file ``start`` selects.

    :raises ConfigError: the run or the checkpoint does not exist (the message lists the
        checkpoints there are).
    """
    folder = start_run_folder(start) / CHECKPOINTS
    criterion = start.criterion.strip()
    if criterion == "latest":
        path = latest_checkpoint(folder)
    elif criterion.isdigit():
        path = checkpoint_path(folder, int(criterion))
        path = path if path.is_file() else None
    else:
        raise ConfigError(
            [
                ConfigIssue(
                    "$.start_config.criterion",
                    f"unknown criterion {start.criterion!r}: use 'latest' or an iteration "
                    "number (DaCapo's validation criteria such as 'voi' need its validation "
                    "scores, which dacapo-trainers does not compute)",
                )
            ]
        )
    if path is None:
        found = sorted(p.name for p in folder.glob("iteration_*.pt"))
        raise ConfigError(
            [
                ConfigIssue(
                    "$.start_config.criterion",
                    f"no checkpoint {start.criterion!r} in {str(folder)!r} (it holds "
                    f"{', '.join(found) if found else 'none'}); pick one of those",
                )
            ]
        )
    return path


def load_start_weights(start: StartConfig, model: Any) -> str:
    """Load the weights ``start`` selects into ``model``; returns what was loaded, in words.

    :raises ConfigError: no run, no checkpoint, or no tensor of the checkpoint fits the model.
    """
    path = start_checkpoint(start)
    weights: dict[str, Any] = load_checkpoint(path)["model"]
    own = model.state_dict()
    common = {
        name: value
        for name, value in weights.items()
        if name in own and tuple(value.shape) == tuple(own[name].shape)
    }
    if len(common) == len(weights) == len(own):
        model.load_state_dict(weights, strict=True)
        return f"started from the weights of {path}"
    if not common:
        raise ConfigError(
            [
                ConfigIssue(
                    "$.start_config",
                    f"none of the {len(weights)} tensors in {path} matches the model by name "
                    "and shape: that run trained another architecture; start from a run with "
                    "the same architecture config",
                )
            ]
        )
    model.load_state_dict({**own, **common}, strict=True)
    return (
        f"started from the weights of {path}: {len(common)} of the model's {len(own)} tensors "
        "matched by name and shape (DaCapo's rule); the others keep their fresh initialisation"
    )
