from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from simple_tensor_helpers import (
    ForegroundPredictor,
    IdentityPredictor,
    SimpleTask,
    ZarrDataset,
    blobs,
    make_dataset,
)

from dacapo_trainers import NonFiniteLossError, ZarrContainer, open_array
from dacapo_trainers.testing import ToyModel
from dacapo_trainers_simple_tensor import SimpleTensorTrainer, SimpleTensorTrainerConfig

CPU = torch.device("cpu")


def make_trainer(seed: int | None = 0, **overrides: Any) -> SimpleTensorTrainer:
    fields: dict[str, Any] = {
        "name": "simple",
        "batch_size": 2,
        "learning_rate": 1e-2,
        "warmup_iterations": 5,
    }
    fields.update(overrides)
    trainer = SimpleTensorTrainerConfig(**fields).build_trainer()
    assert isinstance(trainer, SimpleTensorTrainer)
    trainer.seed = seed
    return trainer


def setup(
    trainer: SimpleTensorTrainer,
    datasets: list[ZarrDataset],
    task: SimpleTask | None = None,
    snapshot_container: ZarrContainer | None = None,
    model_seed: int = 0,
) -> tuple[ToyModel, SimpleTask, torch.optim.Optimizer]:
    torch.manual_seed(model_seed)
    model = ToyModel()
    task = task or SimpleTask(ForegroundPredictor())
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider(datasets, model, task, snapshot_container)
    return model, task, optimizer


def test_iterations_are_consecutive_and_counted_before_yield(blob_dataset: ZarrDataset) -> None:
    trainer = make_trainer()
    model, _, optimizer = setup(trainer, [blob_dataset])
    trainer.iteration = 5  # as the driver does on resume
    seen = []
    with trainer:
        for stats in trainer.iterate(4, model, optimizer, CPU):
            assert trainer.iteration == stats.iteration + 1
            assert np.isfinite(stats.loss) and stats.time > 0
            seen.append(stats.iteration)
    assert seen == [5, 6, 7, 8]
    assert trainer.iteration == 9


def test_loss_falls_on_tiny_task(blob_dataset: ZarrDataset) -> None:
    trainer = make_trainer(batch_size=4, learning_rate=3e-2, optimizer="Adam")
    model, _, optimizer = setup(trainer, [blob_dataset])
    losses = [s.loss for s in trainer.iterate(60, model, optimizer, CPU)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


def run_steps(
    trainer: SimpleTensorTrainer, model: ToyModel, optimizer: torch.optim.Optimizer, n: int
) -> list[float]:
    return [stats.loss for stats in trainer.iterate(n, model, optimizer, CPU)]


@pytest.mark.parametrize("load_before_build", [False, True])
def test_resume_is_bit_exact(blob_dataset: ZarrDataset, load_before_build: bool) -> None:
    straight = make_trainer(seed=7)
    model, _, optimizer = setup(straight, [blob_dataset])
    expected = run_steps(straight, model, optimizer, 8)

    first = make_trainer(seed=7)
    model_a, _, optimizer_a = setup(first, [blob_dataset])
    losses = run_steps(first, model_a, optimizer_a, 3)
    saved = {
        "model": model_a.state_dict(),
        "optimizer": optimizer_a.state_dict(),
        "trainer": first.state_dict(),
        "iteration": first.iteration,
    }

    # Fresh objects; another seed and model init prove everything comes from the checkpoint.
    second = make_trainer(seed=123)
    torch.manual_seed(99)
    model_b = ToyModel()
    if load_before_build:
        second.load_state_dict(saved["trainer"])
    optimizer_b = second.create_optimizer(model_b)
    second.build_batch_provider([blob_dataset], model_b, SimpleTask(ForegroundPredictor()))
    model_b.load_state_dict(saved["model"])
    optimizer_b.load_state_dict(saved["optimizer"])
    if not load_before_build:
        second.load_state_dict(saved["trainer"])
    second.iteration = saved["iteration"]
    losses += run_steps(second, model_b, optimizer_b, 5)

    assert losses == expected
    for (name, p), (_, q) in zip(model.named_parameters(), model_b.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    assert optimizer.param_groups[0]["lr"] == optimizer_b.param_groups[0]["lr"]


def test_same_seed_same_batches_other_seed_other_batches(blob_dataset: ZarrDataset) -> None:
    def raws(seed: int) -> list[torch.Tensor]:
        trainer = make_trainer(seed=seed)
        model, _, optimizer = setup(trainer, [blob_dataset])
        run_steps(trainer, model, optimizer, 3)
        return model.inputs

    a, b, c = raws(1), raws(1), raws(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_no_seed_draws_from_torch_global_generator(blob_dataset: ZarrDataset) -> None:
    def first_raw() -> torch.Tensor:
        torch.manual_seed(5)
        trainer = make_trainer(seed=None)
        model, _, optimizer = setup(trainer, [blob_dataset])
        run_steps(trainer, model, optimizer, 1)
        return model.inputs[0]

    assert torch.equal(first_raw(), first_raw())


def test_warmup_is_dacapos_linear_schedule(blob_dataset: ZarrDataset) -> None:
    trainer = make_trainer(learning_rate=0.1, warmup_iterations=4, warmup_start_factor=0.25)
    model, _, optimizer = setup(trainer, [blob_dataset])
    reference_optimizer = torch.optim.RAdam(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    reference = torch.optim.lr_scheduler.LinearLR(
        reference_optimizer, start_factor=0.25, end_factor=1.0, total_iters=4
    )
    for _ in trainer.iterate(6, model, optimizer, CPU):
        reference_optimizer.step()
        reference.step()
        assert optimizer.param_groups[0]["lr"] == reference_optimizer.param_groups[0]["lr"]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["RAdam", "Adam", "AdamW", "SGD"])
def test_optimizer_choice(name: str) -> None:
    trainer = make_trainer(optimizer=name, weight_decay=0.01, warmup_iterations=0)
    optimizer = trainer.create_optimizer(ToyModel())
    assert type(optimizer).__name__ == name
    assert optimizer.param_groups[0]["weight_decay"] == 0.01
    assert optimizer.param_groups[0]["lr"] == 1e-2  # no warmup: full rate from the start


def test_flips_and_transposes_keep_raw_and_target_aligned(tmp_path: Path) -> None:
    # raw == gt (uint8) and target == gt as float: every target must equal the raw centre,
    # whatever flips and transposes were drawn. Raw extends beyond the gt, at another offset.
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, size=(20, 22, 22), dtype=np.uint8)
    gt = raw[2:18, 3:19, 3:19].copy()
    dataset = make_dataset(
        tmp_path,
        "identity",
        raw,
        gt,
        voxel_size=(4, 4, 4),
        raw_offset=(-8, 0, 0),
        gt_offset=(0, 12, 12),
    )
    trainer = make_trainer(batch_size=4)
    task = SimpleTask(IdentityPredictor())
    model, _, optimizer = setup(trainer, [dataset], task)
    run_steps(trainer, model, optimizer, 10)
    for raw_batch, target_batch in zip(model.inputs, task.loss.targets, strict=True):
        assert torch.equal(raw_batch[:, :, 2:-2, 2:-2, 2:-2], target_batch)


def test_no_augmentation_gives_plain_crops(tmp_path: Path) -> None:
    raw, gt = blobs((16, 16, 16), seed=1)
    dataset = make_dataset(tmp_path, "plain", raw, gt)
    trainer = make_trainer(batch_size=3, flips=False, transposes=False)
    model, _, optimizer = setup(trainer, [dataset])
    run_steps(trainer, model, optimizer, 2)
    expected = torch.from_numpy(raw.astype(np.float32))  # raw as the dataset gives it
    for sample in torch.cat(model.inputs)[:, 0]:
        windows = expected.unfold(0, 12, 1).unfold(1, 12, 1).unfold(2, 12, 1)
        assert (windows == sample).flatten(3).all(-1).any()


def test_dataset_weights_choose_datasets(tmp_path: Path) -> None:
    raw, gt = blobs((16, 16, 16), seed=2)
    never = make_dataset(tmp_path, "never", np.zeros_like(raw), gt, weight=0.0)
    always = make_dataset(tmp_path, "always", np.full_like(raw, 255), gt, weight=1.0)
    trainer = make_trainer(batch_size=4)
    model, _, optimizer = setup(trainer, [never, always])
    run_steps(trainer, model, optimizer, 3)
    assert all(bool((x == 255).all()) for x in model.inputs)


def test_mask_becomes_weight(tmp_path: Path) -> None:
    raw, gt = blobs((16, 16, 16), seed=4)
    mask = np.zeros_like(gt)
    mask[:, :8] = 1
    dataset = make_dataset(tmp_path, "masked", raw, gt, mask=mask)
    trainer = make_trainer(batch_size=4)
    model, task, optimizer = setup(trainer, [dataset])
    run_steps(trainer, model, optimizer, 3)
    weights = torch.cat(task.loss.weights)
    assert 0 < weights.mean() < 1


def subfolders(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir())


def test_snapshots_are_dacapos_sample_0_with_world_geometry(tmp_path: Path) -> None:
    raw, gt = blobs((20, 20, 20), seed=5)
    mask = np.ones_like(gt)
    mask[:, :5] = 0
    dataset = make_dataset(
        tmp_path,
        "snap",
        raw,
        gt,
        mask=mask,
        voxel_size=(8, 4, 4),
        raw_offset=(80, 40, 40),
        gt_offset=(96, 48, 48),
    )
    dataset.raw = make_dataset(
        tmp_path, "bigger", np.pad(raw, 2), None, voxel_size=(8, 4, 4), raw_offset=(64, 32, 32)
    ).raw
    container = ZarrContainer(tmp_path / "snapshots.zarr", "run")
    # No flips or transposes: the samples are in world orientation, so placement is checkable.
    trainer = make_trainer(batch_size=2, snapshot_interval=3, flips=False, transposes=False)
    reported: list[int] = []
    trainer.add_snapshot_listener(lambda iteration, c: reported.append(iteration))
    model, _, optimizer = setup(trainer, [dataset], snapshot_container=container)
    run_steps(trainer, model, optimizer, 7)
    assert reported == [0, 3, 6]  # DaCapo: after the step of i when i % interval == 0
    assert subfolders(tmp_path / "snapshots.zarr" / "run") == ["0", "3", "6"]
    names = ["gradients", "gt", "mask", "prediction", "raw", "target", "weight"]
    normalized = np.pad(raw, 2).astype(np.float32)  # raw as the dataset gives it, as float32
    for iteration in (0, 3, 6):
        arrays = {
            name: open_array(container.container, f"run/{iteration}/volumes/{name}")
            for name in names
        }
        assert subfolders(tmp_path / f"snapshots.zarr/run/{iteration}/volumes") == names
        for name, array in arrays.items():
            # sample 0, the single channel dropped: spatial axes only; the mask of every sample
            shape = (12, 12, 12) if name == "raw" else (8, 8, 8)
            shape = (2, *shape) if name == "mask" else shape
            assert array.data.shape == shape, name
            assert array.voxel_size == (8, 4, 4)
            assert array.axis_names[-3:] == ("z", "y", "x")
        raw_start = (np.array(arrays["raw"].offset) - [64, 32, 32]) // [8, 4, 4]
        gt_start = (np.array(arrays["gt"].offset) - [96, 48, 48]) // [8, 4, 4]
        assert np.array_equal(np.array(arrays["target"].offset) - arrays["raw"].offset, [16, 8, 8])
        for name in ("target", "weight", "prediction", "gradients", "mask"):
            assert arrays[name].offset == arrays["gt"].offset, name
        window = tuple(slice(s, s + 12) for s in raw_start)
        np.testing.assert_array_equal(arrays["raw"].to_numpy(), normalized[window])
        window = tuple(slice(s, s + 8) for s in gt_start)
        np.testing.assert_array_equal(arrays["gt"].to_numpy(), gt[window])
        np.testing.assert_array_equal(arrays["mask"].to_numpy()[0], mask[window])
        target = arrays["target"].to_numpy()
        np.testing.assert_array_equal(target, (gt[window] > 0).astype(np.float32))
        # d loss / d prediction of the weighted MSE, mean over the batch of 2 x 8³ voxels
        prediction, weight = arrays["prediction"].to_numpy(), arrays["weight"].to_numpy()
        expected = 2 * weight * (prediction - target) / (2 * 8**3)
        np.testing.assert_allclose(arrays["gradients"].to_numpy(), expected, rtol=1e-5, atol=1e-9)


def test_no_snapshot_gt_is_cut_between_snapshots(blob_dataset: ZarrDataset, tmp_path: Path) -> None:
    trainer = make_trainer(snapshot_interval=2)
    setup(trainer, [blob_dataset], snapshot_container=ZarrContainer(tmp_path / "s.zarr"))
    batches = [trainer.next_batch(index) for index in range(4)]
    assert [batch.gt is not None for batch in batches] == [True, False, True, False]
    assert [batch.mask is not None for batch in batches] == [True, False, True, False]


def test_no_snapshots_without_container(blob_dataset: ZarrDataset) -> None:
    trainer = make_trainer(snapshot_interval=1)
    reported: list[int] = []
    trainer.add_snapshot_listener(lambda iteration, c: reported.append(iteration))
    model, _, optimizer = setup(trainer, [blob_dataset])
    run_steps(trainer, model, optimizer, 2)
    assert reported == []


def test_refuses_dataset_without_gt(tmp_path: Path) -> None:
    raw, _ = blobs((16, 16, 16), seed=0)
    dataset = make_dataset(tmp_path, "unlabelled", raw, None)
    trainer = make_trainer()
    reason = trainer.cannot_train_reason([dataset])
    assert reason == (
        "dataset 'unlabelled' has no gt; SimpleTensorTrainer trains only on datasets with "
        "ground truth"
    )
    assert not trainer.can_train([dataset])
    with pytest.raises(ValueError, match="has no gt"):
        trainer.build_batch_provider([dataset], ToyModel(), SimpleTask(ForegroundPredictor()))


def test_refuses_beyond_memory_budget(blob_dataset: ZarrDataset) -> None:
    # 24³ voxels: raw (uint8), gt (uint8), mask (1 byte) and target and weight bound by 3
    # channels of 4 bytes each: 27 bytes a voxel, 373,248 bytes.
    trainer = make_trainer(memory_budget_gb=0.0001)
    reason = trainer.cannot_train_reason([blob_dataset])
    assert reason == (
        "the training volumes need an estimated 0.00 GB in memory, more than "
        "memory_budget_gb = 0.0001; raise memory_budget_gb if the machine has the memory, "
        "or use GunpowderTrainerConfig, which reads crops from disk"
    )
    assert make_trainer(memory_budget_gb=0.000374).can_train([blob_dataset])
    assert not make_trainer(memory_budget_gb=0.000373).can_train([blob_dataset])


def test_refuses_real_size_beyond_budget_at_build(blob_dataset: ZarrDataset) -> None:
    class ManyChannels(ForegroundPredictor):
        def create_target(self, gt: Any) -> Any:
            target = super().create_target(gt)
            target.data = np.repeat(target.data, 10, axis=0)
            return target

    trainer = make_trainer(memory_budget_gb=0.00045)
    assert trainer.can_train([blob_dataset])
    with pytest.raises(ValueError, match=r"need 0\.00 GB in memory, more than memory_budget_gb"):
        setup(trainer, [blob_dataset], SimpleTask(ManyChannels()))


def test_refuses_dataset_smaller_than_model_input(tmp_path: Path) -> None:
    raw, gt = blobs((16, 10, 16), seed=0)
    dataset = make_dataset(tmp_path, "thin", raw, gt)
    trainer = make_trainer()
    assert trainer.can_train([dataset])
    with pytest.raises(ValueError, match=r"dataset 'thin' is too small for the model.*axis 1"):
        setup(trainer, [dataset])


def test_refuses_mismatched_voxel_sizes(tmp_path: Path) -> None:
    raw, gt = blobs((16, 16, 16), seed=0)
    dataset = make_dataset(tmp_path, "aniso", raw, gt)
    dataset.gt = make_dataset(tmp_path, "other", raw, gt, voxel_size=(8, 4, 4)).gt
    reason = make_trainer().cannot_train_reason([dataset])
    assert reason is not None and "gt has voxel size (8, 4, 4) but raw has (4, 4, 4)" in reason


def test_refuses_datasets_of_different_voxel_sizes(tmp_path: Path) -> None:
    raw, gt = blobs((16, 16, 16), seed=0)
    fine = make_dataset(tmp_path, "fine", raw, gt)
    coarse = make_dataset(tmp_path, "coarse", raw, gt, voxel_size=(8, 8, 8))
    assert make_trainer().cannot_train_reason([fine, coarse]) == (
        "dataset 'coarse' has voxel size (8, 8, 8) but dataset 'fine' has (4, 4, 4); "
        "SimpleTensorTrainer does not resample"
    )


def test_iterate_needs_build_and_its_own_optimizer(blob_dataset: ZarrDataset) -> None:
    trainer = make_trainer()
    model = ToyModel()
    optimizer = trainer.create_optimizer(model)
    with pytest.raises(RuntimeError, match="call build_batch_provider"):
        trainer.iterate(1, model, optimizer, CPU)
    trainer.build_batch_provider([blob_dataset], model, SimpleTask(ForegroundPredictor()))
    with pytest.raises(RuntimeError, match="the optimizer that create_optimizer"):
        trainer.iterate(1, model, torch.optim.SGD(model.parameters(), lr=0.1), CPU)


def test_close_releases_volumes(blob_dataset: ZarrDataset) -> None:
    trainer = make_trainer()
    model, _, optimizer = setup(trainer, [blob_dataset])
    with trainer:
        run_steps(trainer, model, optimizer, 1)
    trainer.close()
    with pytest.raises(RuntimeError, match="call build_batch_provider"):
        trainer.iterate(1, model, optimizer, CPU)


def test_non_finite_raw_is_named_in_the_batch_it_appears_in(tmp_path: Path) -> None:
    """Raw with NaN (missing data stored as NaN) makes the loss NaN: the error says the raw of
    that batch is why, not only that the loss became NaN."""
    raw = np.random.default_rng(0).random((24, 24, 24)).astype(np.float32)
    raw[:, :, 6:18] = np.nan  # every 12-voxel crop (the toy model's input) reaches into it
    gt = (raw > 0.5).astype(np.uint8)
    dataset = make_dataset(tmp_path, "holes", raw, gt)
    trainer = make_trainer()
    model, _, optimizer = setup(trainer, [dataset])
    with pytest.raises(NonFiniteLossError) as caught, trainer:
        for _ in trainer.iterate(3, model, optimizer, CPU):
            pass
    message = str(caught.value)
    assert "at iteration 0 because the raw of that batch holds NaN or infinite values" in message
    assert "resume" not in message
