"""A small DaCapo-written run (data, YAML) shared by the run tests of the core and the plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr
from dacapo_written import (
    affinities_task,
    cnnectome_unet,
    coordinate,
    crop_config,
    datasplit,
    intensities_config,
    prepare_array,
    raw_gt_dataset,
    run_document,
    zarr_array_config,
)

from dacapo_trainers.reference import make_demo_data

VOXEL_SIZE = (4, 4, 4)


def write_dacapo_data(folder: Path) -> Path:
    """Demo volumes (40³) rewritten as DaCapo writes arrays (prepare_ds, no root group)."""
    demo = make_demo_data(folder / "demo.zarr", shape=(40, 40, 40), seed=0)
    container = folder / "dacapo.zarr"
    for name in ("raw", "gt"):
        data = np.asarray(zarr.open_array(str(demo / name), mode="r")[...])
        prepare_array(container, name, data, voxel_size=VOXEL_SIZE)
    return container


def dacapo_run(
    container: Path,
    trainer: dict[str, Any],
    *,
    name: str = "dacapo_run",
    num_iterations: int = 4,
    validation_interval: int = 2,
    **changes: Any,
) -> dict[str, Any]:
    """A DaCapo run: raw normalized by IntensitiesArrayConfig, gt cropped into train/validate."""
    raw = intensities_config("raw_norm", zarr_array_config("raw", container, "raw"), 0, 255)
    gt = zarr_array_config("gt", container, "gt")
    half = coordinate(160, 160, 80)
    train = raw_gt_dataset("train", raw, crop_config("gt_train", gt, coordinate(0, 0, 0), half))
    validate = raw_gt_dataset(
        "validate", raw, crop_config("gt_val", gt, coordinate(0, 0, 80), half)
    )
    neighborhood = [coordinate(1, 0, 0), coordinate(0, 1, 0), coordinate(0, 0, 1)]
    document = run_document(
        name,
        affinities_task(neighborhood),
        cnnectome_unet(coordinate(28, 28, 28)),
        trainer,
        datasplit("split", [train], [validate]),
        num_iterations=num_iterations,
        validation_interval=validation_interval,
    )
    document.update(changes)
    return document
