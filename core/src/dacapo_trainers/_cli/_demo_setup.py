"""The demo: synthetic data, a small U-Net and the affinities task, trained in minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .._plugins._optional_hooks import demo_settings
from .._plugins._registry import Registry


def demo_run_data(
    trainer_type: str, iterations: int, output: Path, registry: Registry | None = None
) -> dict[str, Any]:
    """The demo's run config, as plain data (with :func:`demo_settings` for the trainer)."""
    trainer: dict[str, Any] = {
        "__type__": trainer_type,
        "name": "demo",
        "batch_size": 2,
        "learning_rate": 1e-3,
        **demo_settings(trainer_type, registry),
    }
    return {
        "name": "demo",
        "trainer_config": trainer,
        "architecture_config": {
            "__type__": "UNetConfig",
            "name": "demo_unet",
            "input_shape": [44, 44, 44],
            "num_fmaps": 6,
            "fmap_inc_factor": 2,
            "downsample_factors": [[2, 2, 2]],
        },
        "task_config": {
            "__type__": "AffinitiesTaskConfig",
            "name": "demo_affinities",
            "neighborhood": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        },
        "datasets": [
            {
                "__type__": "ZarrDatasetConfig",
                "name": "demo",
                "container": str(output / "demo.zarr"),
                "raw": "raw",
                "gt": "gt",
                "mask": "mask",
                # the demo raw is uint8: centred inputs keep the small U-Net learning
                "intensity_range": [0, 255],
                "normalized_range": [-1, 1],
            }
        ],
        "num_iterations": iterations,
        "checkpoint_interval": max(1, iterations // 4),
        "output": str(output),
        "seed": 0,
        "device": "auto",
    }


def prepare_demo(trainer_type: str, iterations: int, output: Path) -> Path:
    """Write demo data (once) and the demo run file into ``output``; returns the run file.

    :raises ConfigError: the trainer type is not installed (or the run does not structure),
        before anything is written.
    """
    from .._configs._converter import ConfigConverter
    from .._configs._run_config import RunConfig
    from ..reference import make_demo_data

    data = demo_run_data(trainer_type, iterations, output)
    ConfigConverter().structure(data, RunConfig, source=f"demo --trainer {trainer_type}")
    output.mkdir(parents=True, exist_ok=True)
    if not (output / "demo.zarr").exists():
        make_demo_data(output / "demo.zarr")
    run_file = output / "run.yaml"
    run_file.write_text(yaml.safe_dump(data, sort_keys=False))
    return run_file
