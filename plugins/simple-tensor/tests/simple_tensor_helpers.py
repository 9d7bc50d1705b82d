"""Tiny models, tasks and zarr-backed datasets for the simple tensor trainer's tests.

A uniquely named module (not ``conftest``), so that test runs over several packages do not
import another package's helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from dacapo_trainers import Array, InMemoryArray, open_array, write_array

torch.set_num_threads(1)


@attrs.define
class ZarrDataset:
    """A :class:`dacapo_trainers.Dataset` over arrays written to a zarr container."""

    name: str
    raw: Array
    gt: Array | None
    mask: Array | None = None
    weight: float = 1.0
    sample_points: Sequence[Sequence[float]] | None = None


def make_dataset(
    path: Path,
    name: str,
    raw: np.ndarray[Any, Any],
    gt: np.ndarray[Any, Any] | None,
    *,
    mask: np.ndarray[Any, Any] | None = None,
    voxel_size: Sequence[int] = (4, 4, 4),
    raw_offset: Sequence[int] | None = None,
    gt_offset: Sequence[int] | None = None,
    weight: float = 1.0,
) -> ZarrDataset:
    """Write raw/gt/mask to ``path`` with :func:`write_array` and open them again."""
    container = path / f"{name}.zarr"
    dims = len(voxel_size)
    raw_offset = raw_offset or (0,) * dims
    gt_offset = gt_offset or raw_offset
    write_array(container, "raw", raw, voxel_size=voxel_size, offset=raw_offset)
    if gt is not None:
        write_array(container, "gt", gt, voxel_size=voxel_size, offset=gt_offset)
    if mask is not None:
        write_array(container, "mask", mask, voxel_size=voxel_size, offset=gt_offset)
    return ZarrDataset(
        name=name,
        raw=open_array(container, "raw"),
        gt=open_array(container, "gt") if gt is not None else None,
        mask=open_array(container, "mask") if mask is not None else None,
        weight=weight,
    )


class WeightedMSE:
    """Weighted mean squared error; records the targets and weights it sees."""

    def __init__(self) -> None:
        self.targets: list[torch.Tensor] = []
        self.weights: list[torch.Tensor] = []

    def compute(
        self, prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.targets.append(target.detach().clone())
        assert weight is not None
        self.weights.append(weight.detach().clone())
        return (weight * (prediction - target) ** 2).mean()


class ForegroundPredictor:
    """Target: 1 where gt > 0 (one channel); weight: the mask."""

    def create_target(self, gt: Array) -> Array:
        data = (np.asarray(gt.data) > 0).astype(np.float32)[np.newaxis]
        return InMemoryArray(data, voxel_size=gt.voxel_size, offset=gt.offset)

    def create_weight(self, gt: Array, target: Array, mask: Array | None = None) -> Array:
        assert mask is not None
        data = np.asarray(mask.data, dtype=np.float32)[np.newaxis]
        return InMemoryArray(data, voxel_size=gt.voxel_size, offset=gt.offset)


class IdentityPredictor(ForegroundPredictor):
    """Target: the gt as float32, so that with gt == raw it must equal the raw's centre."""

    def create_target(self, gt: Array) -> Array:
        data = np.asarray(gt.data, dtype=np.float32)[np.newaxis]
        return InMemoryArray(data, voxel_size=gt.voxel_size, offset=gt.offset)


@attrs.define
class SimpleTask:
    predictor: Any
    loss: WeightedMSE = attrs.Factory(WeightedMSE)


def blobs(shape: Sequence[int], seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """uint8 raw (bright foreground + noise) and its binary labels."""
    rng = np.random.default_rng(seed)
    coarse = rng.random(tuple(-(-s // 4) for s in shape)) > 0.6
    labels = np.kron(coarse, np.ones((4,) * len(shape), dtype=bool))[tuple(slice(s) for s in shape)]
    raw = labels * 160 + rng.integers(0, 60, size=shape)
    return raw.astype(np.uint8), labels.astype(np.uint8)
