"""BatchTrainer: the loop, its order of work, the restore order, random state and snapshots.

A toy subclass implements only its data (random crops of a random in-memory volume); every
test runs real optimizer steps of the kit's toy models (a tiny convolution) on the CPU.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dacapo_trainers import (
    Batch,
    BatchGeometry,
    BatchTrainer,
    BatchTrainerConfig,
    TrainingIterationStats,
    ZarrContainer,
    linear_warmup,
    open_array,
)
from dacapo_trainers._batches._snapshots import snapshot_due, write_snapshot
from dacapo_trainers.testing import ToyModel, ToyUpsamplingModel

CPU = torch.device("cpu")
VOXEL = (4, 4, 4)


class WeightedMSE:
    def compute(
        self, prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        assert weight is not None
        return (weight * (prediction - target) ** 2).mean()


@attrs.define
class ToyTask:
    predictor: Any = None
    loss: WeightedMSE = attrs.Factory(WeightedMSE)


#: The kit's toy models that the toy trainer feeds; both record their inputs (copies).
ToyModels = ToyModel | ToyUpsamplingModel


def toy_model(upsample: bool = False) -> ToyModels:
    """One valid 3³ convolution (8³ -> 6³), or one with x2 upsampling after it (10³ at 4 nm ->
    16³ at 2 nm)."""
    return ToyUpsamplingModel() if upsample else ToyModel(input_shape=(8, 8, 8), convolutions=1)


def log_forwards(model: torch.nn.Module, log: list[tuple[Any, ...]]) -> None:
    """Each forward of ``model`` appends ``("forward",)`` to ``log``."""
    model.register_forward_pre_hook(lambda module, args: log.append(("forward",)))


class ToyTrainer(BatchTrainer):
    """Random crops of a random volume; everything random from ``self.generator``."""

    trainer_config: ToyConfig

    def __init__(self, trainer_config: ToyConfig) -> None:
        super().__init__(trainer_config)
        self.log: list[tuple[Any, ...]] = []
        self.volume: torch.Tensor | None = None
        self.beta_draws: list[float] = []

    def prepare_batches(self, datasets: Any, model: Any, task: Any) -> None:
        self.log.append(("prepare",))
        self.volume = torch.rand((1, 24, 24, 24), generator=self.generator)
        self.input_shape = tuple(model.input_shape)
        self.output_shape = tuple(model.output_shape)

    def next_batch(self, index: int) -> Batch:
        assert self.volume is not None
        self.log.append(("batch", index))
        size = self.input_shape[0]  # the models' inputs are cubes inside the 24³ volume
        last = 24 - size
        starts = torch.randint(0, last + 1, (self.batch_size, 3), generator=self.generator).tolist()
        raw = torch.stack(
            [self.volume[:, a : a + size, b : b + size, c : c + size] for a, b, c in starts]
        )
        shape = (self.batch_size, 1, *self.output_shape)
        target = torch.rand(shape, generator=self.generator)
        if self.trainer_config.beta:  # a sampler that takes no generator: the documented way
            seed = self.draw_seed()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.beta_draws.append(float(torch.distributions.Beta(2.0, 2.0).sample()))
        output_voxel = (2, 2, 2) if self.trainer_config.upsample else VOXEL
        geometry = BatchGeometry(
            raw_voxel_size=VOXEL,
            output_voxel_size=output_voxel,
            raw_offsets=[[s * 4 for s in start] for start in starts],
            # both models' valid convolution trims one raw voxel (4 nm) on each side
            output_offsets=[[s * 4 + 4 for s in start] for start in starts],
        )
        due = self.snapshot_due(index)
        return Batch(
            raw,
            target,
            torch.ones(shape),
            geometry,
            gt=(target[:, 0] > 0.5).numpy() if due else None,
            mask=np.ones((self.batch_size, *self.output_shape), dtype=bool) if due else None,
            on_release=lambda: self.log.append(("release", index)),
        )

    def start_batches(self, first_index: int) -> None:
        self.log.append(("start", first_index))

    def close_batches(self) -> None:
        self.log.append(("close",))
        self.volume = None


@attrs.define(kw_only=True)
class ToyConfig(BatchTrainerConfig):
    """A toy batch trainer."""

    trainer_type: ClassVar[type[ToyTrainer]] = ToyTrainer
    upsample: bool = False
    beta: bool = False


def make(
    seed: int | None = 0,
    *,
    model_seed: int = 0,
    build: bool = True,
    config_class: type[ToyConfig] = ToyConfig,
    model_factory: Callable[[], ToyModels] | None = None,
    **overrides: Any,
) -> tuple[ToyTrainer, ToyModels, torch.optim.Optimizer]:
    fields: dict[str, Any] = {
        "name": "toy",
        "batch_size": 2,
        "learning_rate": 0.05,
        "warmup_iterations": 3,
    }
    fields.update(overrides)
    container = fields.pop("container", None)
    trainer = config_class(**fields).build_trainer()
    assert isinstance(trainer, ToyTrainer)
    trainer.seed = seed
    torch.manual_seed(model_seed)
    model = model_factory() if model_factory else toy_model(fields.get("upsample", False))
    optimizer = trainer.create_optimizer(model)
    if build:
        trainer.build_batch_provider([], model, ToyTask(), container)
    return trainer, model, optimizer


def losses(trainer: ToyTrainer, model: ToyModels, optimizer: Any, n: int) -> list[float]:
    return [stats.loss for stats in trainer.iterate(n, model, optimizer, CPU)]


# -- the loop ----------------------------------------------------------------------------------


def test_iterations_are_counted_and_consecutive_from_the_trainer_iteration() -> None:
    trainer, model, optimizer = make()
    trainer.iteration = 4
    seen = []
    for stats in trainer.iterate(3, model, optimizer, "cpu"):
        assert isinstance(stats, TrainingIterationStats)
        assert trainer.iteration == stats.iteration + 1
        assert isinstance(stats.loss, float) and np.isfinite(stats.loss) and stats.time > 0
        seen.append(stats.iteration)
    assert seen == [4, 5, 6]
    assert [s.iteration for s in trainer.iterate(2, model, optimizer, CPU)] == [7, 8]


#: What three iterations do, in order (as logged by the toy trainer and model).
LOOP_ORDER = [
    ("batch", 0),
    ("forward",),
    ("release", 0),  # one batch held at a time: a worker with one slot never starves
    ("batch", 1),
    ("yield", 0),
    ("forward",),
    ("release", 1),
    ("batch", 2),
    ("yield", 1),
    ("forward",),
    ("release", 2),
    ("yield", 2),  # nothing requested beyond the iterations asked for
]


def test_batch_i_plus_1_is_requested_while_step_i_is_open() -> None:
    trainer, model, optimizer = make()
    log_forwards(model, trainer.log)
    del trainer.log[:]
    for stats in trainer.iterate(3, model, optimizer, CPU):
        trainer.log.append(("yield", stats.iteration))
    assert trainer.log == LOOP_ORDER


def test_cpu_batches_reach_the_model_without_a_copy() -> None:
    trainer, model, optimizer = make()
    seen: list[Batch] = []
    reached: list[int] = []
    model.register_forward_pre_hook(lambda module, args: reached.append(args[0].data_ptr()))
    next_batch = trainer.next_batch

    def recording(index: int) -> Batch:
        seen.append(next_batch(index))
        return seen[-1]

    trainer.next_batch = recording  # type: ignore[method-assign]
    losses(trainer, model, optimizer, 2)
    assert reached == [b.raw.data_ptr() for b in seen]


def test_optimizer_is_dacapos_radam_with_the_linear_warmup() -> None:
    trainer, model, optimizer = make(learning_rate=0.1, warmup_iterations=4)
    assert isinstance(optimizer, torch.optim.RAdam)
    assert optimizer.param_groups[0]["decoupled_weight_decay"] is True
    reference_optimizer = torch.optim.RAdam(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    reference = linear_warmup(reference_optimizer, 4, 0.01)
    for _ in trainer.iterate(6, model, optimizer, CPU):
        reference_optimizer.step()
        reference.step()
        assert optimizer.param_groups[0]["lr"] == reference_optimizer.param_groups[0]["lr"]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_build_optimizer_chooses_the_optimizer_the_warmup_wraps() -> None:
    class SGDTrainer(ToyTrainer):
        def build_optimizer(self, model: Any) -> torch.optim.Optimizer:
            return torch.optim.SGD(model.parameters(), lr=self.learning_rate)

    trainer = SGDTrainer(ToyConfig(name="t", batch_size=1, learning_rate=1.0))
    optimizer = trainer.create_optimizer(toy_model())
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # warmup starts at 1%


def test_iterate_needs_the_provider_and_its_own_optimizer() -> None:
    trainer, model, optimizer = make(build=False)
    with pytest.raises(RuntimeError, match=r"call build_batch_provider\(\) before iterate"):
        trainer.iterate(1, model, optimizer, CPU)
    trainer.build_batch_provider([], model, ToyTask())
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="the optimizer that create_optimizer"):
        trainer.iterate(1, model, other, CPU)
    with pytest.raises(RuntimeError, match="generator exists from build_batch_provider"):
        ToyTrainer(ToyConfig(name="t", batch_size=1, learning_rate=1.0)).generator  # noqa: B018


def test_context_starts_and_close_stops_the_producers() -> None:
    trainer, model, optimizer = make()
    trainer.iteration = 3
    del trainer.log[:]
    with trainer:
        steps = trainer.iterate(4, model, optimizer, CPU)
        next(steps)  # batch 4 is now requested ahead
    assert trainer.log[0] == ("start", 3)
    assert trainer.log[-2:] == [("release", 4), ("close",)]  # the batch held ahead goes back
    trainer.close()  # again: safe
    with pytest.raises(RuntimeError, match="call build_batch_provider"):
        trainer.iterate(1, model, optimizer, CPU)


def test_a_failing_step_releases_its_batch() -> None:
    trainer, model, optimizer = make()

    def broken(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("out of memory, say")

    model.forward = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="out of memory"):
        losses(trainer, model, optimizer, 2)
    assert trainer.log[-2:] == [("batch", 0), ("release", 0)]


# -- state and the restore order -----------------------------------------------------------


def checkpoint_at(iteration: int, n: int, **overrides: Any) -> tuple[dict[str, Any], list[float]]:
    """Train ``n`` steps and save, as the driver does, at the yield of ``iteration - 1``."""
    trainer, model, optimizer = make(seed=7, **overrides)
    saved: dict[str, Any] = {}
    seen = []
    for stats in trainer.iterate(n, model, optimizer, CPU):
        seen.append(stats.loss)
        if trainer.iteration == iteration:
            saved = saved_state(trainer, model, optimizer)
    return saved, seen


def saved_state(trainer: ToyTrainer, model: ToyModels, optimizer: Any) -> dict[str, Any]:
    """What a checkpoint holds, through torch.save/load(weights_only=True) as the driver's."""
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "trainer": trainer.state_dict(),
        },
        buffer,
    )
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize("load_first", [False, True])
def test_resume_from_a_mid_iterate_checkpoint_is_bit_exact(load_first: bool) -> None:
    saved, straight = checkpoint_at(3, 8)
    # The run's seed (prepare_batches drew the volume from it), another model init: the
    # weights, the schedule and the generator's state must come from the checkpoint.
    trainer = ToyTrainer(ToyConfig(name="toy", batch_size=2, learning_rate=0.05))
    trainer.seed = 7
    torch.manual_seed(5)
    model = toy_model()
    if load_first:  # before the optimizer and the provider exist: applied when they do
        trainer.load_state_dict(saved["trainer"])
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([], model, ToyTask())
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if not load_first:  # the driver's order
        trainer.load_state_dict(saved["trainer"])
    trainer.iteration = 3
    assert losses(trainer, model, optimizer, 5) == straight[3:]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)  # the warmup went on


def test_state_dict_before_building_keeps_loaded_state() -> None:
    saved, _ = checkpoint_at(2, 3)
    trainer = ToyTrainer(ToyConfig(name="t", batch_size=2, learning_rate=0.05))
    trainer.load_state_dict(saved["trainer"])
    state = trainer.state_dict()
    assert torch.equal(state["generator"], saved["trainer"]["generator"])
    assert state["scheduler"] == saved["trainer"]["scheduler"]


def test_a_seed_gives_the_batches_none_draws_from_torch() -> None:
    def first_raw(seed: int | None) -> torch.Tensor:
        torch.manual_seed(11)
        trainer, model, optimizer = make(seed=seed)
        losses(trainer, model, optimizer, 1)
        return model.inputs[0]

    assert torch.equal(first_raw(1), first_raw(1))
    assert not torch.equal(first_raw(1), first_raw(2))
    assert torch.equal(first_raw(None), first_raw(None))


def test_an_abandoned_iterate_gives_back_and_redraws_the_batch_it_held() -> None:
    straight_trainer, model, optimizer = make()
    losses(straight_trainer, model, optimizer, 5)
    expected = [x.clone() for x in model.inputs]

    trainer, model, optimizer = make()
    steps = trainer.iterate(5, model, optimizer, CPU)
    next(steps), next(steps)
    steps.close()  # the caller stops: batch 2, requested ahead, goes back
    assert ("release", 2) in trainer.log
    losses(trainer, model, optimizer, 3)
    assert all(torch.equal(a, b) for a, b in zip(model.inputs, expected, strict=True))


def test_batch_state_is_restored_after_prepare_batches_in_either_order() -> None:
    class Counting(ToyTrainer):
        drawn = 0

        def next_batch(self, index: int) -> Batch:
            self.drawn += 1
            return super().next_batch(index)

        def batch_state_dict(self) -> dict[str, Any]:
            return {"drawn": self.drawn}

        def load_batch_state_dict(self, state: dict[str, Any]) -> None:
            self.drawn = state["drawn"]

    config = ToyConfig(name="t", batch_size=1, learning_rate=0.05)
    trainer = Counting(config)
    model = toy_model()
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([], model, ToyTask())
    steps = trainer.iterate(4, model, optimizer, CPU)
    next(steps)
    state = trainer.state_dict()
    assert state["batches"] == {"drawn": 1}  # before batch 1, which is already drawn
    for load_first in (True, False):
        other = Counting(config)
        if load_first:
            other.load_state_dict(state)
        other.create_optimizer(model)
        other.build_batch_provider([], model, ToyTask())
        if not load_first:
            other.load_state_dict(state)
        assert other.drawn == 1


def test_samplers_without_a_generator_run_on_a_drawn_seed_in_a_forked_rng() -> None:
    saved, _ = checkpoint_at(2, 5, beta=True)
    straight, model, optimizer = make(seed=7, beta=True)
    global_state = torch.get_rng_state()
    losses(straight, model, optimizer, 5)
    assert torch.equal(torch.get_rng_state(), global_state)  # the global generator untouched
    assert len(set(straight.beta_draws)) == 5  # every batch its own draw

    resumed, model, optimizer = make(seed=7, beta=True)
    resumed.load_state_dict(saved["trainer"])
    resumed.iteration = 2
    losses(resumed, model, optimizer, 3)
    assert resumed.beta_draws == straight.beta_draws[2:]


# -- snapshots ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("interval", "expected"), [(1, [0, 1, 2, 3, 4]), (2, [0, 2, 4]), (7, [0])])
def test_snapshots_follow_dacapos_timing(
    tmp_path: Path, interval: int, expected: list[int]
) -> None:
    container = ZarrContainer(tmp_path / "snapshots.zarr")
    trainer, model, optimizer = make(container=container, snapshot_interval=interval)
    reported: list[int] = []
    trainer.add_snapshot_listener(lambda iteration, where: reported.append(iteration))
    losses(trainer, model, optimizer, 5)
    assert reported == expected
    folders = sorted(int(p.name) for p in container.container.iterdir() if p.is_dir())
    assert folders == expected
    assert [snapshot_due(i, interval) for i in range(5)] == [i in expected for i in range(5)]


def test_a_snapshot_on_a_finer_output_grid(tmp_path: Path) -> None:
    container = ZarrContainer(tmp_path / "snapshots.zarr", "run/a")
    trainer, model, optimizer = make(container=container, snapshot_interval=3, upsample=True)
    batches: list[Batch] = []
    next_batch = trainer.next_batch
    trainer.next_batch = lambda i: batches.append(next_batch(i)) or batches[-1]  # type: ignore[method-assign]
    losses(trainer, model, optimizer, 4)
    geometry = batches[3].geometry
    arrays = {
        name: open_array(container.container, f"run/a/3/volumes/{name}")
        for name in ("raw", "gt", "target", "weight", "prediction", "gradients", "mask")
    }
    assert arrays["raw"].voxel_size == (4, 4, 4)
    assert arrays["raw"].offset == geometry.raw_offsets[0]
    assert arrays["raw"].data.shape == (10, 10, 10)
    for name in ("gt", "target", "weight", "prediction", "gradients", "mask"):
        assert arrays[name].voxel_size == (2, 2, 2), name
        assert arrays[name].offset == geometry.output_offsets[0], name
    for name in ("gt", "target", "weight", "prediction", "gradients"):  # sample 0
        assert arrays[name].data.shape == (16, 16, 16), name
        assert arrays[name].axis_names == ("z", "y", "x"), name
    # the mask of both samples, as DaCapo; booleans as float32
    assert arrays["mask"].data.shape == (2, 16, 16, 16)
    assert arrays["mask"].axis_names == ("c^", "z", "y", "x")
    assert arrays["mask"].dtype == np.float32
    np.testing.assert_array_equal(arrays["mask"].to_numpy(), np.asarray(batches[3].mask))
    np.testing.assert_array_equal(arrays["raw"].to_numpy(), batches[3].raw[0, 0].numpy())
    np.testing.assert_array_equal(arrays["gt"].to_numpy(), batches[3].gt[0])
    prediction, target = arrays["prediction"].to_numpy(), arrays["target"].to_numpy()
    expected = 2 * (prediction - target) / (2 * 16**3)  # d mean((p - t)²) / dp, weight 1
    np.testing.assert_allclose(arrays["gradients"].to_numpy(), expected, rtol=1e-5, atol=1e-10)


def test_no_snapshots_without_a_container() -> None:
    trainer, model, optimizer = make(snapshot_interval=1)
    reported: list[int] = []
    trainer.add_snapshot_listener(lambda iteration, where: reported.append(iteration))
    losses(trainer, model, optimizer, 2)
    assert reported == []
    assert not trainer.snapshot_due(0)


@settings(max_examples=10, deadline=None)
@given(
    dims=st.integers(2, 3),
    channels=st.integers(1, 3),
    raw_voxel=st.integers(1, 16),
    factor=st.sampled_from([1, 2, 4]),
    offset=st.integers(-100, 100),
)
def test_write_snapshot_places_sample_0(
    tmp_path_factory: pytest.TempPathFactory,
    dims: int,
    channels: int,
    raw_voxel: int,
    factor: int,
    offset: int,
) -> None:
    container = ZarrContainer(tmp_path_factory.mktemp("snap") / "s.zarr")
    output_voxel = raw_voxel * 4 // factor
    geometry = BatchGeometry(
        raw_voxel_size=[raw_voxel * 4] * dims,
        output_voxel_size=[output_voxel] * dims,
        raw_offsets=[[offset] * dims, [0] * dims],
        output_offsets=[[offset + 3] * dims, [1] * dims],
    )
    prediction = np.random.default_rng(0).random((2, channels, *[5] * dims), dtype=np.float32)
    written = write_snapshot(container, 10, {"prediction": prediction, "gt": None}, geometry)
    assert written == ["10/volumes/prediction"]
    array = open_array(container.container, "10/volumes/prediction")
    spatial = ("z", "y", "x")[-dims:]
    assert array.axis_names == (spatial if channels == 1 else ("c^", *spatial))
    assert array.voxel_size == (output_voxel,) * dims
    assert array.offset == (offset + 3,) * dims
    np.testing.assert_array_equal(
        array.to_numpy(), prediction[0, 0] if channels == 1 else prediction[0]
    )


def test_batch_geometry_refuses_mismatched_axes() -> None:
    with pytest.raises(ValueError, match=r"raw_voxel_size has 3 spatial axes but output_voxel"):
        BatchGeometry((4, 4, 4), (2, 2), [(0, 0, 0)], [(0, 0, 0)])
    with pytest.raises(ValueError, match=r"raw_offsets\[1\] has 2"):
        BatchGeometry((4, 4, 4), (4, 4, 4), [(0, 0, 0), (0, 0)], [(0, 0, 0)] * 2)
    with pytest.raises(ValueError, match="1 raw offsets and 2 output offsets"):
        BatchGeometry((4, 4, 4), (4, 4, 4), [(0, 0, 0)], [(0, 0, 0)] * 2)
    geometry = BatchGeometry((8, 8), (4, 4), [(1, 2)], [(3, 4)])
    assert geometry.axis_names == ("y", "x") and geometry.dims == 2 and geometry.batch_size == 1


def test_release_calls_back_once() -> None:
    calls: list[int] = []
    batch = Batch(
        torch.zeros(1),
        torch.zeros(1),
        torch.zeros(1),
        BatchGeometry((1,), (1,), [(0,)], [(0,)]),
        on_release=lambda: calls.append(1),
    )
    batch.release()
    batch.release()
    assert calls == [1]


# -- the config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("snapshot_interval", 0, "snapshot_interval must be at least 1 or None, got 0"),
        ("warmup_iterations", -1, "warmup_iterations must be at least 0, got -1"),
        ("warmup_start_factor", 0.0, "warmup_start_factor must be in (0, 1], got 0.0"),
    ],
)
def test_config_fields_are_validated(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        ToyConfig(name="t", batch_size=1, learning_rate=1.0, **{field: value})
    assert str(caught.value) == message


def test_config_defaults_are_dacapos() -> None:
    config = ToyConfig(name="t", batch_size=1, learning_rate=1.0)
    assert (config.snapshot_interval, config.warmup_iterations) == (None, 1000)
    assert config.warmup_start_factor == 0.01
    for field in attrs.fields(BatchTrainerConfig):
        assert field.metadata.get("help_text"), field.name
