"""The validation loss: the task's loss on fixed crops of the validation datasets.

Every ``validation_interval`` iterations the driver asks for :meth:`Validation.loss`. The crops
are chosen once, without randomness: the gt of each validation dataset is tiled with the
model's output shape (at most :data:`MAX_CROPS_PER_DATASET` tiles, evenly spread), each tile
with the raw around it at the model's input shape. Raw is read as the dataset gives it, cast to
float32, zero outside the array; gt and mask are zero outside theirs (the mask is also zero
outside the gt), so voxels outside the data weigh nothing. Target and weight come from the
task's predictor, the loss from the task's loss. The model runs in ``eval()`` mode under
``torch.no_grad()`` and is put back in training mode after; no random generator is touched,
so an exact resume stays exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from .._arrays._chunk_reads import label_dataset_reads
from .._arrays._in_memory import InMemoryArray
from .._contract._models import output_voxel_size
from .._contract._protocols import Array, Dataset

#: At most this many output tiles of each validation dataset enter the validation loss.
MAX_CROPS_PER_DATASET = 16


def read_window(array: Array, offset: Sequence[int], shape: Sequence[int]) -> Any:
    """The voxels of ``array`` in the world box at ``offset`` of ``shape`` voxels, zero outside.

    Channel axes are kept whole. ``offset`` is in world units and is taken on ``array``'s
    voxel grid.
    """
    import numpy as np

    voxel_size = [int(v) for v in array.voxel_size]
    dims = len(voxel_size)
    data = array.data
    channels = tuple(int(s) for s in data.shape[: len(data.shape) - dims])
    extent = [int(s) for s in data.shape[-dims:]]
    start = [
        (int(o) - int(a)) // v for o, a, v in zip(offset, array.offset, voxel_size, strict=True)
    ]
    out = np.zeros(channels + tuple(int(s) for s in shape), dtype=np.dtype(data.dtype))
    source, target = [], []
    for b, n, e in zip(start, shape, extent, strict=True):
        low, high = max(b, 0), min(b + int(n), e)
        if high <= low:
            return out
        source.append(slice(low, high))
        target.append(slice(low - b, high - b))
    whole = (slice(None),) * len(channels)
    out[whole + tuple(target)] = np.asarray(data[whole + tuple(source)])
    return out


def tile_starts(begin: int, extent: int, size: int) -> list[int]:
    """Starts of tiles of ``size`` covering ``[begin, begin + extent)``; the last one flush."""
    if extent <= size:
        return [begin]
    count = math.ceil(extent / size)
    return [begin + min(k * size, extent - size) for k in range(count)]


@attrs.define(eq=False)
class _Crop:
    raw: Any  # torch tensor (channels, *input_shape), float32
    target: Any  # torch tensor (*target shape)
    weight: Any  # torch tensor (*weight shape)


class Validation:
    """The validation loss of a run; see the module docstring.

    :param datasets: the validation datasets (each with gt).
    :param task: the run's task (predictor and loss).
    :param model: the model being trained.
    :param interval: validate every this many completed iterations.
    """

    def __init__(self, datasets: Sequence[Dataset], task: Any, model: Any, interval: int) -> None:
        self.datasets = list(datasets)
        self.task = task
        self.interval = interval
        self._input_shape = tuple(int(s) for s in model.input_shape)
        self._output_shape = tuple(int(s) for s in model.output_shape)
        self._model = model
        self._crops: list[_Crop] | None = None
        for dataset in self.datasets:
            if dataset.gt is None:
                raise ValueError(
                    f"validation dataset {dataset.name!r} has no gt; give it a gt_config, or "
                    "remove it from validate_configs"
                )
            label_dataset_reads(dataset, "validation dataset")

    def due(self, iteration: int) -> bool:
        """Whether to validate after ``iteration`` completed iterations."""
        return iteration % self.interval == 0

    def loss(self, model: Any, device: Any) -> float:
        """The mean loss over the validation crops, with ``model`` in eval mode, no gradients."""
        import torch

        crops = self._prepare()
        was_training = bool(model.training)
        # The loss takes what training gives it: a model's eval-only activation (DaCapo's
        # Model.eval_activation, e.g. the affinities' sigmoid) is left out while validating.
        eval_activation = getattr(model, "eval_activation", None)
        if eval_activation is not None:
            model.eval_activation = None
        model.eval()
        try:
            with torch.no_grad():
                losses = [
                    float(
                        self.task.loss.compute(
                            model(crop.raw[None].to(device)),
                            crop.target[None].to(device),
                            crop.weight[None].to(device),
                        ).item()
                    )
                    for crop in crops
                ]
        finally:
            model.train(was_training)
            if eval_activation is not None:
                model.eval_activation = eval_activation
        return sum(losses) / len(losses)

    def _prepare(self) -> list[_Crop]:
        if self._crops is None:
            self._crops = [
                crop for dataset in self.datasets for crop in self._dataset_crops(dataset)
            ]
        return self._crops

    def _dataset_crops(self, dataset: Dataset) -> list[_Crop]:
        import numpy as np
        import torch

        gt = dataset.gt
        assert gt is not None  # checked in __init__
        raw_voxel = tuple(int(v) for v in dataset.raw.voxel_size)
        out_voxel = output_voxel_size(self._model, raw_voxel)
        if tuple(int(v) for v in gt.voxel_size) != out_voxel:
            raise ValueError(
                f"validation dataset {dataset.name!r}: gt has voxel size {tuple(gt.voxel_size)}, "
                f"but the model's output has {out_voxel} (raw {raw_voxel}); give the gt at the "
                "output voxel size"
            )
        dims = len(raw_voxel)
        out_size = [s * v for s, v in zip(self._output_shape, out_voxel, strict=True)]
        in_size = [s * v for s, v in zip(self._input_shape, raw_voxel, strict=True)]
        context = [
            (i - o) // 2 // v * v for i, o, v in zip(in_size, out_size, raw_voxel, strict=True)
        ]
        gt_extent = [int(s) * v for s, v in zip(gt.data.shape[-dims:], out_voxel, strict=True)]
        axes = [
            tile_starts(int(b), e, s)
            for b, e, s in zip(gt.offset, gt_extent, out_size, strict=True)
        ]
        grid = [
            tuple(start)
            for start in np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, dims)
        ]
        if len(grid) > MAX_CROPS_PER_DATASET:
            picks = np.linspace(0, len(grid) - 1, MAX_CROPS_PER_DATASET).round().astype(int)
            grid = [grid[i] for i in sorted(set(picks.tolist()))]
        inside_gt = InMemoryArray(
            np.ones(gt.data.shape[-dims:], dtype=np.uint8), voxel_size=out_voxel, offset=gt.offset
        )
        crops = []
        for start in grid:
            offset = [int(s) for s in start]
            raw = read_window(
                dataset.raw,
                [o - c for o, c in zip(offset, context, strict=True)],
                self._input_shape,
            )
            raw = raw.astype(np.float32, copy=False)
            if raw.ndim == dims:
                raw = raw[np.newaxis]
            labels = read_window(gt, offset, self._output_shape)
            valid = read_window(inside_gt, offset, self._output_shape)
            if dataset.mask is not None:
                mask = read_window(dataset.mask, offset, self._output_shape)
                mask = mask.reshape(mask.shape[-dims:]) * valid
            else:
                mask = valid
            gt_crop = InMemoryArray(labels, voxel_size=out_voxel, offset=offset)
            mask_crop = InMemoryArray(mask, voxel_size=out_voxel, offset=offset)
            target = self.task.predictor.create_target(gt_crop)
            weight = self.task.predictor.create_weight(gt_crop, target, mask_crop)
            crops.append(
                _Crop(
                    raw=torch.from_numpy(np.ascontiguousarray(raw)),
                    target=torch.from_numpy(np.asarray(target.data, dtype=np.float32)),
                    weight=torch.from_numpy(np.asarray(weight.data, dtype=np.float32)),
                )
            )
        return crops
