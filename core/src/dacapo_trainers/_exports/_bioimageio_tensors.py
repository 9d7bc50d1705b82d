"""The test tensors of a bioimage.io package: a crop of a run's raw and the model's output.

The input is the centre crop of the first dataset's raw, of the model's input shape, as float32
with batch and channel axes (what the trainers feed the model); the output is the model's in
eval mode, so whatever the model applies only at evaluation (e.g. a sigmoid after a head
trained on logits) is part of the package's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from .._configs._run_config import RunConfig
from .._contract._models import output_voxel_size
from .._errors import ConfigError, ConfigIssue
from .._run._run_inputs import dataset_configs


@attrs.define(frozen=True)
class SampleTensors:
    """An input crop, the model's output for it, and their voxel sizes (world units)."""

    input: Any
    output: Any
    input_voxel_size: tuple[int, ...]
    output_voxel_size: tuple[int, ...]


def sample_tensors(run: RunConfig, model: Any) -> SampleTensors:
    """The centre crop of the run's first dataset's raw, and ``model``'s output for it.

    :raises ConfigError: the run has no dataset, or its raw is smaller than the input shape.
    """
    import numpy as np
    import torch

    configs = dataset_configs(run)
    if not configs:
        raise ConfigError([ConfigIssue("$.datasets", "the run has no dataset to crop from")])
    path, config = configs[0]
    raw = config.build().raw
    voxel_size = tuple(int(v) for v in raw.voxel_size)
    shape = tuple(int(s) for s in model.input_shape)
    spatial = tuple(int(s) for s in raw.data.shape[-len(voxel_size) :])
    if len(shape) != len(spatial) or any(s > a for s, a in zip(shape, spatial, strict=True)):
        raise ConfigError(
            [
                ConfigIssue(
                    f"{path}.raw",
                    f"raw of shape {list(spatial)} is smaller than the model's input shape "
                    f"{list(shape)}: no test input can be cut from it",
                )
            ]
        )
    crop = tuple(slice((a - s) // 2, (a - s) // 2 + s) for a, s in zip(spatial, shape, strict=True))
    leading = (slice(None),) * (len(raw.data.shape) - len(voxel_size))
    data = np.asarray(raw.data[leading + crop], dtype=np.float32)
    if data.ndim == len(shape):  # no channel axis
        data = data[None]
    data = np.ascontiguousarray(data[None])
    model.eval()
    with torch.no_grad():
        output = model(torch.from_numpy(data)).numpy().astype(np.float32)
    return SampleTensors(data, output, voxel_size, output_voxel_size(model, voxel_size))


def save_tensor(array: Any, path: Path) -> Path:
    """``array`` as a ``.npy`` file (the format bioimage.io test tensors use)."""
    import numpy as np

    np.save(path, array, allow_pickle=False)
    return path


def draw_cover(tensors: SampleTensors, path: Path) -> Path:
    """A cover for a run without previews: the middle section of the test input and of the
    output's first channel, side by side (2:1, as bioimage.io recommends)."""
    from matplotlib.figure import Figure  # no pyplot: no display, no global state

    def middle(array: Any) -> Any:
        image = array[0, 0]
        while image.ndim > 2:
            image = image[image.shape[0] // 2]
        return image

    figure = Figure(figsize=(4, 2))
    axes = figure.subplots(1, 2)
    for axis, array in zip(axes, (tensors.input, tensors.output), strict=True):
        axis.imshow(middle(array), cmap="gray")
        axis.axis("off")
    figure.subplots_adjust(0, 0, 1, 1, 0.02)
    figure.savefig(path, format="png", dpi=100)
    return path
