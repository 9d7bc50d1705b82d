"""Snapshots of training batches, as DaCapo 0.3.5's ``GunpowderTrainer`` writes them.

After the step of iteration ``i`` with ``i % snapshot_interval == 0`` (iterations 0, N, 2N,
...), the batch goes to the snapshot container as::

    {i}/volumes/raw          the network's input        raw voxel size, raw crop offset
    {i}/volumes/gt           the ground truth           output voxel size and crop offset
    {i}/volumes/target       the task's target          (all output arrays alike)
    {i}/volumes/weight       the loss weight
    {i}/volumes/prediction   the network's output (logits where the head has no activation)
    {i}/volumes/gradients    d loss / d prediction
    {i}/volumes/mask         the mask of every sample of the batch

Each array is sample 0's without the batch axis, except the mask, which keeps the batch axis
(sample ``k`` of the batch at index ``k``, dropped for a batch of one) as DaCapo writes it;
a channel axis that has a single channel is dropped. Leading axes that remain are channels
(``"c^"``), then the spatial axes; every array is on sample 0's offset. Values are written
in the batch's dtype: raw, weight and prediction as float32 (DaCapo writes raw normalized by
``IntensitiesArrayConfig`` as float64, but it holds float32 values here, so float32 loses
nothing), the mask as it comes (uint8 0/1 from the trainers here); booleans are written as
float32 (neuroglancer has no boolean type). Arrays a batch does not have (no gt, no
gradient) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._arrays._axes import default_axis_names
from .._arrays._zarr_io import write_array

if TYPE_CHECKING:
    import torch

    from .._contract._protocols import LocalContainerIdentifier
    from ._batch import Batch, BatchGeometry

#: The arrays of a snapshot, in the order they are written.
SNAPSHOT_ARRAYS = ("raw", "gt", "target", "weight", "prediction", "gradients", "mask")
#: The group of a snapshot's arrays inside ``{iteration}/``.
SNAPSHOT_GROUP = "volumes"


def snapshot_due(iteration: int, interval: int | None) -> bool:
    """Whether iteration ``iteration`` writes a snapshot: ``iteration % interval == 0``."""
    return interval is not None and iteration % interval == 0


def snapshot_path(iteration: int, name: str) -> str:
    """The path of array ``name`` of the snapshot of ``iteration``: ``"{i}/volumes/{name}"``."""
    return f"{iteration}/{SNAPSHOT_GROUP}/{name}"


#: The arrays written for every sample of the batch (the others: sample 0).
WHOLE_BATCH_ARRAYS = frozenset({"mask"})


def _host(data: Any) -> Any:
    """A batch array (or part of one) as numpy on the host."""
    import numpy as np

    if hasattr(data, "detach"):  # a torch tensor, wherever it lives
        data = data.detach().cpu().numpy()
    return np.asarray(data)


def _whole_batch(data: Any, dims: int) -> Any:
    """Every sample of ``data``: ``(batch, *spatial)``, the batch axis dropped for one sample.

    A single channel per sample is dropped first; several channels are kept after the batch
    axis.
    """
    if data.ndim == dims + 2 and data.shape[1] == 1:
        data = data[:, 0]
    return data[0] if data.shape[0] == 1 else data


def write_snapshot(
    container: LocalContainerIdentifier,
    iteration: int,
    arrays: Mapping[str, Any],
    geometry: BatchGeometry,
) -> list[str]:
    """Write the batch ``arrays`` as the snapshot of ``iteration`` (sample 0; the mask of
    every sample).

    ``arrays`` maps names of :data:`SNAPSHOT_ARRAYS` to batch arrays (numpy arrays or torch
    tensors, batch axis first); None values and unknown names are skipped. Returns the paths
    written, in the container's group.
    """
    import numpy as np

    dims = geometry.dims
    spatial = list(geometry.axis_names)
    written = []
    for name in SNAPSHOT_ARRAYS:
        batch_array = arrays.get(name)
        if batch_array is None:
            continue
        if name in WHOLE_BATCH_ARRAYS:
            data = _whole_batch(_host(batch_array), dims)
        else:
            data = _host(batch_array[0])
            if data.ndim == dims + 1 and data.shape[0] == 1:
                data = data[0]  # a single channel: no channel axis, as DaCapo
        if data.dtype == np.bool_:
            data = data.astype(np.float32)
        is_raw = name == "raw"
        path = snapshot_path(iteration, name)
        write_array(
            container,
            path,
            data,
            voxel_size=geometry.raw_voxel_size if is_raw else geometry.output_voxel_size,
            offset=geometry.raw_offsets[0] if is_raw else geometry.output_offsets[0],
            axis_names=[*default_axis_names(data.ndim - dims, 0), *spatial],
        )
        written.append(path)
    return written


def write_batch_snapshot(
    container: LocalContainerIdentifier,
    iteration: int,
    batch: Batch,
    prediction: torch.Tensor,
    gradient: torch.Tensor | None,
) -> None:
    """The snapshot of ``iteration``: sample 0 of ``batch``, its prediction and gradient."""
    arrays = {
        "raw": batch.raw,
        "gt": batch.gt,
        "target": batch.target,
        "weight": batch.weight,
        # bfloat16 has no numpy type: autocast outputs are written as float32
        "prediction": prediction.detach().float(),
        "gradients": gradient.float() if gradient is not None else None,
        "mask": batch.mask,
    }
    write_snapshot(container, iteration, arrays, batch.geometry)
