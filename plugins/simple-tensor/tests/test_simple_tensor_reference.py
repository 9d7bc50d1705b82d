"""The trainer on the core's reference parts: demo data, U-Net, affinities and one-hot tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dacapo_trainers import ZarrContainer, open_array, write_array
from dacapo_trainers.reference import (
    AffinitiesTaskConfig,
    OneHotTaskConfig,
    UNetConfig,
    ZarrDatasetConfig,
    make_demo_data,
)
from dacapo_trainers_simple_tensor import SimpleTensorTrainer, SimpleTensorTrainerConfig

CPU = torch.device("cpu")


def trainer_for(**overrides: Any) -> SimpleTensorTrainer:
    fields: dict[str, Any] = {"name": "simple", "batch_size": 2, "learning_rate": 3e-2}
    fields.update(overrides)
    trainer = SimpleTensorTrainerConfig(**fields).build_trainer()
    assert isinstance(trainer, SimpleTensorTrainer)
    trainer.seed = 0
    return trainer


def test_loss_falls_on_demo_affinities(tmp_path: Path) -> None:
    container = make_demo_data(tmp_path / "demo.zarr", shape=(48, 48, 48), seed=0)
    dataset = ZarrDatasetConfig(name="demo", container=str(container), mask="mask").build()
    architecture = UNetConfig(
        name="tiny", input_shape=[28, 28, 28], num_fmaps=4, downsample_factors=[[2, 2, 2]]
    )
    task = AffinitiesTaskConfig(name="affinities").build()
    torch.manual_seed(0)
    model = task.create_model(architecture.build())
    assert model.output_shape == (12, 12, 12)
    trainer = trainer_for(warmup_iterations=10)
    assert trainer.can_train([dataset])
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, task)
    with trainer:
        losses = [stats.loss for stats in trainer.iterate(100, model, optimizer, CPU)]
    assert [np.isfinite(loss) for loss in losses] == [True] * 100
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:10])


def one_hot_setup(
    container: Path, trainer: SimpleTensorTrainer, snapshots: ZarrContainer | None = None
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    dataset = ZarrDatasetConfig(name="cells", container=str(container), gt="foreground").build()
    architecture = UNetConfig(
        name="tiny2d", input_shape=[20, 20], num_fmaps=4, downsample_factors=[[2, 2]]
    )
    task = OneHotTaskConfig(name="fg", classes=["background", "cell"]).build()
    model = task.create_model(architecture.build())
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, task, snapshots)
    return model, optimizer


def test_one_hot_2d_resumes_exactly_and_writes_snapshots(tmp_path: Path) -> None:
    container = make_demo_data(tmp_path / "demo2d.zarr", shape=(40, 40), seed=1)
    labels = open_array(container, "gt").to_numpy()
    write_array(container, "foreground", (labels > 0).astype(np.uint8), voxel_size=(8, 8))
    snapshots = ZarrContainer(tmp_path / "snapshots.zarr")

    torch.manual_seed(0)
    straight = trainer_for(warmup_iterations=3, snapshot_interval=4)
    model, optimizer = one_hot_setup(container, straight, snapshots)
    expected = [s.loss for s in straight.iterate(6, model, optimizer, CPU)]

    torch.manual_seed(0)
    first = trainer_for(warmup_iterations=3)
    model_a, optimizer_a = one_hot_setup(container, first)
    losses = [s.loss for s in first.iterate(2, model_a, optimizer_a, CPU)]
    saved = (model_a.state_dict(), optimizer_a.state_dict(), first.state_dict())

    torch.manual_seed(1)
    second = trainer_for(warmup_iterations=3)
    model_b, optimizer_b = one_hot_setup(container, second)
    model_b.load_state_dict(saved[0])
    optimizer_b.load_state_dict(saved[1])
    second.load_state_dict(saved[2])
    second.iteration = 2
    losses += [s.loss for s in second.iterate(4, model_b, optimizer_b, CPU)]

    assert losses == expected
    for p, q in zip(model.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(p, q)

    assert sorted(p.name for p in snapshots.container.iterdir() if p.is_dir()) == ["0", "4"]
    prediction = open_array(snapshots.container, "4/volumes/prediction")
    assert prediction.data.shape == (2, *model.output_shape)  # sample 0; two classes
    assert prediction.axis_names == ("c^", "y", "x")
    assert prediction.voxel_size == (8, 8)
    assert open_array(snapshots.container, "4/volumes/gt").axis_names == ("y", "x")
