"""The four field mistakes a plugin author makes, each caught with its fix."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest

from dacapo_trainers import (
    ConfigError,
    PluginContractError,
    Registry,
    TrainerConfig,
    hookimpl,
    structure_config,
)
from dacapo_trainers._plugins._config_rules import config_class_problems
from dacapo_trainers.testing import TrainerConformance


@attrs.define(kw_only=True)
class UnannotatedFieldConfig(TrainerConfig):
    trainer_type: ClassVar[str] = "x:Y"
    snapshot_interval = None  # meant as a field: not one


@attrs.define(kw_only=True)
class UntypedFieldConfig(TrainerConfig):
    trainer_type: ClassVar[str] = "x:Y"
    alpha = attrs.field(default=0.2)  # a field of no type: accepts anything


@attrs.define(kw_only=True)
class SharedDefaultConfig(TrainerConfig):
    trainer_type: ClassVar[str] = "x:Y"
    flips: list[int] = [0, 1]  # noqa: RUF008 - the mistake under test


@attrs.define(kw_only=True)
class EmptySharedDefaultConfig(TrainerConfig):
    trainer_type: ClassVar[str] = "x:Y"
    names: dict[str, int] = {}  # noqa: RUF008 - the mistake under test


@attrs.define(kw_only=True)
class TrainerTypeFieldConfig(TrainerConfig):
    trainer_type: str = "x:Y"  # type: ignore[misc]  # the mistake: a field, not a ClassVar


@attrs.define(kw_only=True)
class GoodConfig(TrainerConfig):
    trainer_type: ClassVar[str] = "x:Y"
    MAX_ALPHA: ClassVar[float] = 1.0
    alpha: float = 0.2
    flips: list[int] = attrs.field(factory=list)


@pytest.mark.parametrize(
    ("cls", "advice"),
    [
        (UnannotatedFieldConfig, "snapshot_interval = None has no annotation"),
        # the annotation suggested is the default's type
        (UnannotatedFieldConfig, "`snapshot_interval: int | None = None`"),
        (UntypedFieldConfig, "annotate it: `alpha: float = attrs.field(...)`"),
        # the fix keeps the default's value
        (SharedDefaultConfig, "use `attrs.field(factory=lambda: [0, 1])`"),
        (EmptySharedDefaultConfig, "use `attrs.field(factory=dict)`"),
        (TrainerTypeFieldConfig, "trainer_type: ClassVar[str]"),
    ],
)
def test_each_mistake_is_named_with_its_fix(cls: type, advice: str) -> None:
    problems = config_class_problems(cls)
    assert len(problems) == 1, problems
    assert cls.__name__ in problems[0] and advice in problems[0]


def test_a_correct_class_has_no_problem() -> None:
    assert config_class_problems(GoodConfig) == []


def test_the_registry_refuses_trainer_type_as_a_field() -> None:
    class Plugin:
        @hookimpl
        def dacapo_trainers_trainer_configs(self) -> list[type]:
            return [TrainerTypeFieldConfig]

    with pytest.raises(PluginContractError, match=r"trainer_type: ClassVar\[str\]"):
        Registry.isolated(Plugin())


@pytest.mark.parametrize("cls", [UnannotatedFieldConfig, UntypedFieldConfig, SharedDefaultConfig])
def test_the_kit_fails_each_mistake(cls: type[TrainerConfig]) -> None:
    suite: Any = type("Suite", (TrainerConformance,), {"config": None})()
    config = cls(name="c", batch_size=1, learning_rate=0.1)
    with pytest.raises(pytest.fail.Exception) as failed:
        suite.test_config_classes_follow_the_field_rules(config)
    assert cls.__name__ in str(failed.value)
    assert "Writing a config class" in str(failed.value)


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"must be positive, got {value}")  # the message names no field


@attrs.define(kw_only=True)
class ValidatedConfig(TrainerConfig):
    trainer_type: ClassVar[str] = "x:Y"
    sigma: float = attrs.field(default=1.0, validator=_positive)


def test_a_validators_refusal_is_reported_at_its_field() -> None:
    registry = Registry.isolated(ValidatedConfig)
    data = {"__type__": "ValidatedConfig", "name": "c", "batch_size": 1, "learning_rate": 0.1}
    with pytest.raises(ConfigError) as caught:
        structure_config({**data, "sigma": -2.0}, registry=registry)
    [issue] = caught.value.issues
    assert (issue.path, issue.message) == ("$.sigma", "must be positive, got -2.0")
