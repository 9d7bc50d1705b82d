"""Writing one training batch as a snapshot: raw, gt, target, weight, prediction, mask."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dacapo_trainers import LocalContainerIdentifier, write_array

from ._sampling import BatchSampler, SamplePlan


def write_snapshot(
    container: LocalContainerIdentifier,
    iteration: int,
    sampler: BatchSampler,
    plans: Sequence[SamplePlan],
    arrays: dict[str, torch.Tensor],
) -> None:
    """Write ``arrays`` (raw, target, weight, prediction) plus gt and mask to ``container``.

    Each goes to ``"{iteration}/{name}"`` as the whole batch: batch axis first (``"b^"``), then
    any channel axes (``"c^"``), then the spatial axes. The offset is the world offset of the
    first sample's output crop (of its raw crop for ``raw``); the other samples come from
    elsewhere, and flipped or transposed samples are not in world orientation.
    """
    gt, mask = sampler.host_batch(plans)
    batch = {**arrays, "gt": gt, "mask": mask}
    plan = plans[0]
    voxel_size = sampler.voxel_size
    spatial_names = list(sampler.volumes[plan.volume].axis_names)
    dims = len(voxel_size)
    output_voxel_size = sampler.output_voxel_size
    output_offset = [o * v for o, v in zip(plan.origin, output_voxel_size, strict=True)]
    raw_offset = [o * v for o, v in zip(sampler.raw_start(plan), voxel_size, strict=True)]
    for name in ("raw", "gt", "target", "weight", "prediction", "mask"):
        data = batch[name].detach().cpu().numpy()
        axis_names = ["b^"] + ["c^"] * (data.ndim - dims - 1) + spatial_names
        write_array(
            container,
            f"{iteration}/{name}",
            data,
            voxel_size=voxel_size if name == "raw" else output_voxel_size,
            offset=raw_offset if name == "raw" else output_offset,
            axis_names=axis_names,
        )
