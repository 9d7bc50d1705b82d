"""The toy problem the conformance checks train on: demo cells, a tiny U-Net, affinities.

Chosen to learn reliably in a few dozen CPU steps from any seed: 12 feature maps and one
downsampling (input 28³, output 12³), a 40³ volume, nearest-neighbour affinities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..reference import AffinitiesTaskConfig, UNetConfig, ZarrDatasetConfig, make_demo_data

#: Shape of the synthetic volume, in voxels.
DATA_SHAPE = (40, 40, 40)


def write_toy_data(folder: Path, seed: int = 0) -> Path:
    """Write the toy volume (raw, gt, mask) to ``folder/toy.zarr``; returns the container."""
    return make_demo_data(folder / "toy.zarr", shape=DATA_SHAPE, seed=seed)


def write_small_toy_data(folder: Path, input_shape: Sequence[int]) -> Path:
    """Toy data one voxel smaller than ``input_shape`` on every axis, in
    ``folder/small.zarr``: no crop of that input fits in it."""
    shape = [max(1, int(size) - 1) for size in input_shape]
    return make_demo_data(folder / "small.zarr", shape=shape, seed=0)


def toy_architecture_config() -> UNetConfig:
    """A tiny reference U-Net: input 28³, output 12³."""
    return UNetConfig(
        name="conformance_unet",
        input_shape=[28, 28, 28],
        num_fmaps=12,
        downsample_factors=[[2, 2, 2]],
    )


def toy_task_config() -> AffinitiesTaskConfig:
    """Nearest-neighbour affinities with balanced weights."""
    return AffinitiesTaskConfig(name="conformance_affinities")


def toy_dataset_config(container: Path, *, with_gt: bool = True) -> ZarrDatasetConfig:
    """The toy volume as a dataset; ``with_gt=False`` gives one without ground truth.

    Its uint8 raw is mapped onto [-1, 1] by the dataset, as in the demo: trainers feed raw as
    the dataset gives it (DaCapo's semantics), so normalising is the dataset config's job.
    """
    return ZarrDatasetConfig(
        name="toy" if with_gt else "toy_without_gt",
        container=str(container),
        gt="gt" if with_gt else None,
        mask="mask" if with_gt else None,
        intensity_range=[0, 255],
        normalized_range=[-1, 1],
    )
