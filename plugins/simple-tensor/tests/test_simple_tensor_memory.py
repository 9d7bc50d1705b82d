"""What the trainer holds: raw only where samples reach it, at the dataset's dtype."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from simple_tensor_helpers import ForegroundPredictor, SimpleTask, make_dataset

from dacapo_trainers.testing import ToyModel
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig


def test_raw_is_held_only_where_samples_reach_at_its_dtype(tmp_path: Path) -> None:
    # raw 40³ uint16, gt 10³ from raw voxel 15; ToyModel: 12³ -> 8³, context 2
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 60_000, size=(40, 40, 40), dtype=np.uint16)
    gt = (rng.random((10, 10, 10)) > 0.5).astype(np.uint64)
    dataset = make_dataset(tmp_path, "cell", raw, gt, gt_offset=(60, 60, 60))
    config = SimpleTensorTrainerConfig(
        name="simple", batch_size=3, learning_rate=1e-3, flips=False, transposes=False
    )
    trainer = config.build_trainer()
    trainer.seed = 0
    model = ToyModel()
    trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, SimpleTask(ForegroundPredictor()))
    with trainer:
        assert trainer._sampler is not None
        (volume,) = trainer._sampler.volumes
        # output crops start at gt voxels 15..17, so raw crops at 13..15, reaching to 26
        assert volume.raw.dtype == torch.uint16
        assert volume.raw_origin == (13, 13, 13)
        assert tuple(volume.raw.shape) == (1, 14, 14, 14)
        assert not volume.mask.strides[-1]  # ones without a mask: one value, broadcast
        for index in range(4):
            batch = trainer.next_batch(index)
            assert batch.raw.dtype == torch.float32
            for sample, offset in enumerate(batch.geometry.raw_offsets):
                start = [o // 4 for o in offset]
                expected = raw[tuple(slice(s, s + 12) for s in start)]
                assert np.array_equal(batch.raw[sample, 0].numpy(), expected.astype(np.float32))
