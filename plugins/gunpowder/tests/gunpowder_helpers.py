"""Helpers of the gunpowder plugin's tests: tiny volumes, models, tasks and pipelines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import yaml

from dacapo_trainers import InMemoryArray, open_array, write_array

VOXEL_SIZE = (4, 4, 4)


@attrs.define
class TinyDataset:
    """A :class:`dacapo_trainers.Dataset` over zarr arrays."""

    name: str
    raw: Any
    gt: Any
    mask: Any = None
    weight: float = 1.0
    sample_points: Any = None


def write_volume(
    folder: Path,
    shape: tuple[int, ...] = (24, 24, 24),
    *,
    mask_box: tuple[slice, ...] | None = None,
    gt_box: tuple[slice, ...] | None = None,
    offset: tuple[int, ...] = (0, 0, 0),
    name: str = "tiny",
) -> TinyDataset:
    """Raw ramp (uint8), gt blocks (uint32), optional mask (1 inside ``mask_box``)."""
    container = folder / f"{name}.zarr"
    grid = np.indices(shape).sum(axis=0)
    raw = (grid * 255 // max(1, grid.max())).astype(np.uint8)
    if gt_box is None:
        gt = (1 + np.indices(shape)[0] // 4 + 10 * (np.indices(shape)[2] // 4)).astype(np.uint32)
    else:
        gt = np.zeros(shape, dtype=np.uint32)
        gt[gt_box] = 7
    write_array(container, "raw", raw, voxel_size=VOXEL_SIZE, offset=offset)
    write_array(container, "gt", gt, voxel_size=VOXEL_SIZE, offset=offset)
    mask = None
    if mask_box is not None:
        mask_data = np.zeros(shape, dtype=np.uint8)
        mask_data[mask_box] = 1
        write_array(container, "mask", mask_data, voxel_size=VOXEL_SIZE, offset=offset)
        mask = open_array(container, "mask")
    return TinyDataset(
        name=name, raw=open_array(container, "raw"), gt=open_array(container, "gt"), mask=mask
    )


class TinyPredictor:
    """Target: gt > 0 as one float channel; weight: the mask as float."""

    def create_target(self, gt: Any) -> InMemoryArray:
        data = (np.asarray(gt.data) > 0).astype(np.float32)[np.newaxis]
        return InMemoryArray(data, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_weight(self, gt: Any, target: Any, mask: Any = None) -> InMemoryArray:
        data = np.ones_like(target.data) if mask is None else np.asarray(mask.data)[np.newaxis]
        return InMemoryArray(data.astype(np.float32), voxel_size=gt.voxel_size, offset=gt.offset)


class FailingInWorkerPredictor(TinyPredictor):
    """Works in the process that made it (the layout probe), fails in data workers."""

    def __init__(self) -> None:
        self.home = os.getpid()

    def create_target(self, gt: Any) -> InMemoryArray:
        if os.getpid() != self.home:
            raise RuntimeError("boom from the predictor in a worker")
        return super().create_target(gt)


class TinyLoss:
    def compute(self, prediction: Any, target: Any, weight: Any = None) -> Any:
        squared = (prediction - target) ** 2
        return (squared * weight).mean() if weight is not None else squared.mean()


@attrs.define
class TinyTask:
    predictor: Any = attrs.field(factory=TinyPredictor)
    loss: Any = attrs.field(factory=TinyLoss)


def tiny_model(input_shape: tuple[int, int, int] = (8, 8, 8)) -> Any:
    """The kit's toy model with one valid 3x3x3 convolution: output = input - 2 per axis."""
    from dacapo_trainers.testing import ToyModel  # imports torch

    return ToyModel(input_shape=input_shape, convolutions=1)


def child_pids() -> set[int]:
    """Live (non-zombie counts too) child processes of this process, from /proc."""
    me = os.getpid()
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            children.add(int(entry))
    return children


def run_node(
    node: Any,
    array: np.ndarray,
    *,
    seed: int = 3,
    interpolatable: bool = True,
    extra_gt: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``array`` (float raw, or labels when not interpolatable) through ``node``; centre crop."""
    import gunpowder as gp

    from dacapo_trainers_gunpowder.nodes import ArraySource

    raw_key, gt_key = gp.ArrayKey("RAW"), gp.ArrayKey("GT")
    source_array = InMemoryArray(array, voxel_size=VOXEL_SIZE, offset=(0, 0, 0))
    sources = [ArraySource(raw_key, source_array, interpolatable=interpolatable)]
    if extra_gt is not None:
        gt_array = InMemoryArray(extra_gt, voxel_size=VOXEL_SIZE, offset=(0, 0, 0))
        sources.append(ArraySource(gt_key, gt_array, interpolatable=False))
    pipeline = tuple(sources) + gp.MergeProvider() + node
    shape = np.array(array.shape[-3:]) // 2
    begin = (np.array(array.shape[-3:]) - shape) // 2
    roi = gp.Roi(gp.Coordinate(begin * VOXEL_SIZE), gp.Coordinate(shape * VOXEL_SIZE))
    request = gp.BatchRequest(random_seed=seed)
    request[raw_key] = gp.ArraySpec(roi=roi)
    if extra_gt is not None:
        request[gt_key] = gp.ArraySpec(roi=roi)
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    gt_out = batch[gt_key].data if extra_gt is not None else None
    return batch[raw_key].data, gt_out


def centre(array: np.ndarray) -> np.ndarray:
    shape = np.array(array.shape[-3:]) // 2
    begin = (np.array(array.shape[-3:]) - shape) // 2
    return array[tuple(slice(b, b + s) for b, s in zip(begin, shape, strict=True))]


def demo_run_file(
    folder: Path, iterations: int, augments: list[dict[str, Any]], **dataset: Any
) -> Path:
    """``folder/run.yaml``: a gunpowder run (one data worker, a tiny U-Net, affinities) on the
    demo data in ``folder/demo.zarr``; ``dataset`` adds fields to its dataset config."""
    run = {
        "name": "gp-run",
        "trainer_config": {
            "__type__": "GunpowderTrainerConfig",
            "name": "gp",
            "batch_size": 1,
            "learning_rate": 1e-3,
            "num_data_fetchers": 1,
            "augments": augments,
        },
        "architecture_config": {
            "__type__": "UNetConfig",
            "name": "unet",
            "input_shape": [20, 20, 20],
            "downsample_factors": [[2, 2, 2]],
            "num_fmaps": 2,
        },
        "task_config": {"__type__": "AffinitiesTaskConfig", "name": "affs"},
        "datasets": [
            {
                "__type__": "ZarrDatasetConfig",
                "name": "demo",
                "container": str(folder / "demo.zarr"),
                "mask": "mask",
                **dataset,
            }
        ],
        "num_iterations": iterations,
        "checkpoint_interval": 2,
        "output": str(folder / "out"),
        "device": "cpu",
    }
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    return path
