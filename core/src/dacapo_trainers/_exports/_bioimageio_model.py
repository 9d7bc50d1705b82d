"""The architecture file of a bioimage.io package exported by dacapo-trainers.

This module is copied into each package as ``dacapo_trainers_model.py``: its ``build_model``
is the callable of the ``pytorch_state_dict`` weights, called with the run's architecture and
task configs (the package's ``kwargs``) to build the model the state dict fits. It uses only
the public API of ``dacapo_trainers`` (which must be installed, with the plugins providing
those config types) and no other module of this package.
"""

from __future__ import annotations

from typing import Any


def build_model(architecture: dict[str, Any], task: dict[str, Any]) -> Any:
    """The run's model: the task's head on the architecture, as training built it."""
    import dacapo_trainers

    architecture_config = dacapo_trainers.structure_config(
        architecture, dacapo_trainers.ArchitectureConfig
    )
    task_config = dacapo_trainers.structure_config(task, dacapo_trainers.TaskConfig)
    return dacapo_trainers.build_model(task_config.build(), architecture_config.build())
