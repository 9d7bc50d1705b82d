"""Mixed precision, compilation and channels_last_3d of the BatchTrainer step, on the CPU.

bf16 and fp16 autocast train a toy problem whose target the model can learn; resumed runs
repeat uninterrupted ones exactly (the fp16 loss scaler's state included); a device that
cannot autocast is refused before any step; ``torch.compile`` trains and leaves the
checkpointed state_dict as the eager model's.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
import torch
from test_batch_trainer import CPU, ToyConfig, ToyModels, ToyTrainer, losses, saved_state
from test_batch_trainer import make as make_toy

from dacapo_trainers import (
    Batch,
    ConfigError,
    Registry,
    TrainingError,
    ZarrContainer,
    open_array,
    structure_config,
)
from dacapo_trainers._batches._precision import MixedPrecision, precision_problem
from dacapo_trainers.testing import ToyModel

#: A fixed 3x3x3 kernel: the target is what a model of the toy's shape (one convolution)
#: learns exactly. Raw in [-1, 1] and this scale keep every gradient below a third of what
#: overflows at fp16's first loss scale (65536), so that no step is skipped.
TEACHER = torch.Generator().manual_seed(3)
KERNEL = torch.randn((1, 1, 3, 3, 3), generator=TEACHER) * 0.1


class LearnableTrainer(ToyTrainer):
    """The toy's random crops, with the target a teacher convolution of raw."""

    def next_batch(self, index: int) -> Batch:
        batch = super().next_batch(index)
        raw = batch.raw * 2 - 1
        batch.raw = raw
        batch.target = torch.nn.functional.conv3d(raw, KERNEL)
        return batch


@attrs.define(kw_only=True)
class LearnableConfig(ToyConfig):
    """The toy batch trainer with a learnable target."""

    trainer_type: ClassVar[type[LearnableTrainer]] = LearnableTrainer


class PlainModel(ToyModel):
    """The toy convolution without recording its inputs in its forward (for torch.compile)."""

    def __init__(self) -> None:
        super().__init__(input_shape=(8, 8, 8), convolutions=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


def make(
    seed: int = 0, **overrides: Any
) -> tuple[LearnableTrainer, ToyModels, torch.optim.Optimizer]:
    """A learnable toy trainer (no warmup), its model and optimizer, ready to iterate."""
    overrides.setdefault("warmup_iterations", 0)
    trainer, model, optimizer = make_toy(seed, config_class=LearnableConfig, **overrides)
    assert isinstance(trainer, LearnableTrainer)
    return trainer, model, optimizer


# -- autocast ----------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_the_loss_falls(precision: str) -> None:
    trainer, model, optimizer = make(precision=precision)
    seen = losses(trainer, model, optimizer, 40)
    assert np.mean(seen[-5:]) < 0.5 * np.mean(seen[:5]), seen
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast, not a cast
    assert model.inputs[0].dtype == torch.float32  # the batch as it came
    state = trainer.state_dict()
    if precision == "fp16":  # the scaler counted every step without inf/NaN gradients
        assert state["grad_scaler"]["_growth_tracker"] == 40
        assert state["grad_scaler"]["scale"] == 65536.0
    else:
        assert "grad_scaler" not in state


def test_mixed_precision_steps_compute_in_the_autocast_dtype() -> None:
    outputs: list[torch.dtype] = []
    trainer, model, optimizer = make(precision="bf16")
    model.register_forward_hook(lambda module, args, out: outputs.append(out.dtype))
    losses(trainer, model, optimizer, 1)
    trainer, model, optimizer = make()
    model.register_forward_hook(lambda module, args, out: outputs.append(out.dtype))
    losses(trainer, model, optimizer, 1)
    assert outputs == [torch.bfloat16, torch.float32]


@pytest.mark.parametrize("precision", ["32", "bf16", "fp16"])
def test_a_resumed_run_repeats_an_uninterrupted_one_exactly(precision: str) -> None:
    trainer, model, optimizer = make(seed=7, precision=precision)
    straight = []
    checkpoint: dict[str, Any] = {}
    for stats in trainer.iterate(8, model, optimizer, CPU):
        straight.append(stats.loss)
        if trainer.iteration == 3:
            checkpoint = saved_state(trainer, model, optimizer)
    final = trainer.state_dict()

    resumed, model, optimizer = make(seed=7, precision=precision)
    torch.manual_seed(5)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["trainer"])  # before the scaler exists: kept, applied
    resumed.iteration = 3
    assert losses(resumed, model, optimizer, 5) == straight[3:]
    if precision == "fp16":
        assert checkpoint["trainer"]["grad_scaler"]["_growth_tracker"] == 3
        assert resumed.state_dict()["grad_scaler"] == final["grad_scaler"]


def test_the_scaler_state_round_trips_through_load_state_dict() -> None:
    precision = MixedPrecision("fp16", CPU)
    assert precision.scaler is not None
    state = {**precision.state_dict(), "scale": 512.0, "_growth_tracker": 17}
    other = MixedPrecision("fp16", CPU)
    other.load_state_dict(state)
    assert other.state_dict() == state
    assert other.gradient_scale() == 512.0
    plain = MixedPrecision("32", CPU)
    assert plain.scaler is None and plain.state_dict() == {} and plain.gradient_scale() == 1.0
    assert isinstance(plain.autocast(), contextlib.nullcontext)


def test_a_device_that_cannot_autocast_is_refused_before_any_step() -> None:
    trainer, model, optimizer = make(precision="bf16")
    del trainer.log[:]
    with pytest.raises(TrainingError) as caught:
        trainer.iterate(2, model, optimizer, "meta")
    message = str(caught.value)
    assert "LearnableConfig 'toy' cannot train on meta with precision 'bf16'" in message
    assert "$.trainer_config.precision" in message and "no autocast for meta devices" in message
    assert "Choose precision '32'" in message
    assert trainer.log == []  # no batch was requested
    assert precision_problem("32", torch.device("meta")) is None


def test_an_autocast_that_falls_back_to_float32_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What torch does for a dtype a device does not support: warn and compute in float32.
    @contextlib.contextmanager
    def unsupported(device_type: str, dtype: torch.dtype) -> Any:
        warnings.warn("In CPU autocast, but the target dtype is not supported.", stacklevel=2)
        yield

    monkeypatch.setattr(torch, "autocast", unsupported)
    problem = precision_problem("fp16", CPU)
    assert problem is not None
    assert "does not autocast to torch.float16 on cpu" in problem
    assert "the target dtype is not supported" in problem


# -- snapshots in mixed precision -------------------------------------------------------------


def test_fp16_snapshots_hold_float32_predictions_and_unscaled_gradients(tmp_path: Path) -> None:
    container = ZarrContainer(tmp_path / "snapshots.zarr")
    trainer, model, optimizer = make(precision="fp16", container=container, snapshot_interval=1)
    losses(trainer, model, optimizer, 1)
    arrays = {
        name: open_array(container.container, f"0/volumes/{name}")
        for name in ("prediction", "gradients", "target")
    }
    assert arrays["prediction"].dtype == np.float32
    prediction, target = arrays["prediction"].to_numpy(), arrays["target"].to_numpy()
    # d mean((p - t)²) / dp with weight 1 over 2 samples of 6³: the gradient of the loss, not
    # of the loss times the scaler's 65536
    expected = 2 * (prediction - target) / (2 * 6**3)
    np.testing.assert_allclose(arrays["gradients"].to_numpy(), expected, rtol=2e-2, atol=1e-6)


# -- compilation and memory format ------------------------------------------------------------


@pytest.mark.slow
def test_compile_trains_and_checkpoints_the_models_own_state_dict() -> None:
    eager_trainer, eager_model, eager_optimizer = make(model_factory=PlainModel)
    eager = losses(eager_trainer, eager_model, eager_optimizer, 4)
    trainer, model, optimizer = make(model_factory=PlainModel, compile=True)
    compiled = losses(trainer, model, optimizer, 4)
    assert compiled == pytest.approx(eager, rel=1e-4)
    assert trainer._steps.compiled is not None and trainer._steps.compiled[0] is model
    checkpoint = saved_state(trainer, model, optimizer)
    assert (
        list(checkpoint["model"])
        == list(eager_model.state_dict())
        == ["net.0.weight", "net.0.bias"]
    )
    # a compiled run resumes an eager checkpoint and the other way round: same keys
    eager_model.load_state_dict(checkpoint["model"])


def test_channels_last_3d_puts_weights_and_raw_in_that_format() -> None:
    inputs: list[torch.Tensor] = []
    trainer, model, optimizer = make(channels_last_3d=True)
    model.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    seen = losses(trainer, model, optimizer, 3)
    assert model.net[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert inputs[0].is_contiguous(memory_format=torch.channels_last_3d)
    default_trainer, default_model, default_optimizer = make()
    assert seen == pytest.approx(losses(default_trainer, default_model, default_optimizer, 3))
    assert list(saved_state(trainer, model, optimizer)["model"]) == ["net.0.weight", "net.0.bias"]


# -- the config --------------------------------------------------------------------------------


def test_the_defaults_keep_dacapos_float32_eager_step() -> None:
    config = LearnableConfig(name="t", batch_size=1, learning_rate=1.0)
    assert (config.precision, config.compile, config.channels_last_3d) == ("32", False, False)


def test_an_unknown_precision_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError) as caught:
        LearnableConfig(name="t", batch_size=1, learning_rate=1.0, precision="16")
    assert str(caught.value) == "precision must be one of '32', 'bf16', 'fp16', got '16'"
    data = {"__type__": "LearnableConfig", "name": "t", "batch_size": 1, "learning_rate": 1.0}
    registry = Registry.isolated(LearnableConfig)
    config = structure_config({**data, "precision": "bf16", "compile": True}, registry=registry)
    assert (config.precision, config.compile) == ("bf16", True)
    with pytest.raises(ConfigError, match=r"\$\.precision: .*'32', 'bf16', 'fp16', got 'half'"):
        structure_config({**data, "precision": "half"}, registry=registry)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_on_cuda_mixed_precision_trains_and_the_loss_falls(precision: str) -> None:
    trainer, model, optimizer = make(precision=precision)
    model.to("cuda")
    seen = [s.loss for s in trainer.iterate(40, model, optimizer, torch.device("cuda"))]
    assert np.mean(seen[-5:]) < 0.5 * np.mean(seen[:5]), seen
    if precision == "fp16":
        assert trainer.state_dict()["grad_scaler"]["_growth_tracker"] > 0
