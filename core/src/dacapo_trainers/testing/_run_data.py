"""Run files for tests: the smallest real run (a 20³ U-Net with affinities on the CPU)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def tiny_run_data(
    trainer_config: Mapping[str, Any], container: Path, output: Path, **run: Any
) -> dict[str, Any]:
    """A run file's data (plain, as YAML or JSON hold it) for the smallest real run.

    ``trainer_config`` (with its ``"__type__"``) trains a reference U-Net (input 20³, output
    4³, two feature maps) on nearest-neighbour affinities of the zarr ``container``
    (:func:`~dacapo_trainers.reference.make_demo_data`'s layout: ``raw``, ``gt``, ``mask``),
    for one iteration on the CPU into ``output``. ``run`` replaces top-level keys
    (``num_iterations``, ``checkpoint_interval``, ``seed``, ``datasets``, ...).
    """
    data: dict[str, Any] = {
        "name": Path(output).name,
        "trainer_config": dict(trainer_config),
        "architecture_config": {
            "__type__": "UNetConfig",
            "name": "tiny_unet",
            "input_shape": [20, 20, 20],
            "num_fmaps": 2,
            "downsample_factors": [[2, 2, 2]],
        },
        "task_config": {"__type__": "AffinitiesTaskConfig", "name": "affinities"},
        "datasets": [
            {"__type__": "ZarrDatasetConfig", "name": "demo", "container": str(container)}
        ],
        "num_iterations": 1,
        "output": str(output),
        "device": "cpu",
    }
    data.update(run)
    return data
