"""Sanity: the reference U-Net with the affinities task learns on demo data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dacapo_trainers import InMemoryArray, normalize_raw
from dacapo_trainers.reference import (
    AffinitiesTaskConfig,
    UNetConfig,
    ZarrDatasetConfig,
    make_demo_data,
)


def test_thirty_adam_steps_reduce_the_affinities_loss(tmp_path: Path) -> None:
    container = make_demo_data(tmp_path / "demo.zarr", shape=(32, 32, 32), seed=0)
    dataset = ZarrDatasetConfig(name="demo", container=str(container), mask="mask").build()
    torch.manual_seed(0)
    architecture = UNetConfig(
        name="tiny", input_shape=[24, 24, 24], num_fmaps=4, downsample_factors=[[2, 2, 2]]
    ).build()
    task = AffinitiesTaskConfig(name="affs").build()
    model = task.create_model(architecture)

    # One crop: raw of the input shape, gt/mask of the output shape at its centre.
    start = np.array([2, 2, 2])
    context = (np.array(model.input_shape) - np.array(model.output_shape)) // 2
    raw_box = tuple(slice(s, s + n) for s, n in zip(start, model.input_shape, strict=True))
    out_box = tuple(
        slice(s + c, s + c + n) for s, c, n in zip(start, context, model.output_shape, strict=True)
    )
    voxel_size = dataset.raw.voxel_size
    offset = [
        int(o) + int(s.start) * v
        for o, s, v in zip(dataset.raw.offset, out_box, voxel_size, strict=True)
    ]
    assert dataset.gt is not None and dataset.mask is not None
    gt = InMemoryArray(np.asarray(dataset.gt.data[out_box]), voxel_size, offset)
    mask = InMemoryArray(np.asarray(dataset.mask.data[out_box]), voxel_size, offset)
    target = task.predictor.create_target(gt)
    weight = task.predictor.create_weight(gt, target, mask)

    # normalize_raw centres integer raw on 0 ([-1, 1]): with inputs in [0, 1], a tiny ReLU net
    # often starts with most first-layer filters dead and stalls on some seeds.
    raw = torch.from_numpy(normalize_raw(dataset.raw.data[raw_box]))[None, None]
    target_t = torch.from_numpy(target.data)[None]
    weight_t = torch.from_numpy(weight.data)[None]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = task.loss.compute(model(raw), target_t, weight_t)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses
