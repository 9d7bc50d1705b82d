from __future__ import annotations

import attrs
import pytest

from dacapo_trainers import TrainerConfig
from dacapo_trainers_simple_tensor import OPTIMIZERS, SimpleTensorTrainerConfig


def make_config(**overrides: object) -> SimpleTensorTrainerConfig:
    fields: dict[str, object] = {"name": "t", "batch_size": 2, "learning_rate": 1e-3}
    fields.update(overrides)
    return SimpleTensorTrainerConfig(**fields)  # type: ignore[arg-type]


def test_defaults_follow_dacapo() -> None:
    config = make_config()
    assert isinstance(config, TrainerConfig)
    assert config.type_name() == "SimpleTensorTrainerConfig"
    assert config.snapshot_interval is None
    assert (config.flips, config.transposes) == (True, True)
    assert config.optimizer == "RAdam"
    assert (config.warmup_iterations, config.warmup_start_factor) == (1000, 0.01)
    assert config.weight_decay == 0.0
    assert config.memory_budget_gb == 4.0


def test_every_field_has_help_text() -> None:
    for field in attrs.fields(SimpleTensorTrainerConfig):
        assert field.metadata.get("help_text"), field.name


def test_unknown_optimizer_lists_the_choices() -> None:
    with pytest.raises(ValueError) as error:
        make_config(optimizer="Adagrad")
    assert str(error.value) == "optimizer must be one of RAdam, Adam, AdamW, SGD; got 'Adagrad'"
    assert OPTIMIZERS == ("RAdam", "Adam", "AdamW", "SGD")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("snapshot_interval", 0, "snapshot_interval must be at least 1 or None, got 0"),
        ("weight_decay", -0.1, "weight_decay must be at least 0 and at most 1, got -0.1"),
        ("weight_decay", float("inf"), "weight_decay must be at least 0 and at most 1, got inf"),
        ("warmup_iterations", -1, "warmup_iterations must be at least 0, got -1"),
        ("warmup_start_factor", 0.0, "warmup_start_factor must be in (0, 1], got 0.0"),
        ("warmup_start_factor", 1.5, "warmup_start_factor must be in (0, 1], got 1.5"),
        ("memory_budget_gb", 0.0, "memory_budget_gb must be positive, got 0.0"),
    ],
)
def test_invalid_values_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        make_config(**{field: value})
    assert str(error.value) == message


def test_trainer_type_resolves_lazily() -> None:
    assert isinstance(SimpleTensorTrainerConfig.trainer_type, str)
    trainer_class = SimpleTensorTrainerConfig.resolve_trainer_type()
    assert trainer_class.__name__ == "SimpleTensorTrainer"
    trainer = make_config().build_trainer()
    assert isinstance(trainer, trainer_class)
    assert (trainer.iteration, trainer.batch_size, trainer.learning_rate) == (0, 2, 1e-3)
