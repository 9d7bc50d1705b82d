"""The cattrs config layer: DaCapo tags, round trips, strict types, path-qualified errors."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from dacapo_trainers import (
    ConfigConverter,
    ConfigError,
    DuplicateTypeError,
    Registry,
    TaggedConfig,
    TrainerConfig,
    load_config,
)


@attrs.define(kw_only=True)
class AugmentConfig(TaggedConfig):
    """Base of the augments of this test."""

    augmentation_probability: float = 1.0


@attrs.define(kw_only=True)
class ScaleAugmentConfig(AugmentConfig):
    scale: float = 1.0


@attrs.define(kw_only=True)
class MirrorTrainerConfig(TrainerConfig):
    """Shaped like DaCapo 0.3.5's DummyTrainerConfig (a flag field), under a name of its own:
    the real DummyTrainerConfig is a registered reference type (test_config_loading.py)."""

    trainer_type = "dacapo_trainers:Trainer"
    mirror_augment: bool = attrs.field(metadata={"help_text": "Whether to mirror."})


@attrs.define(kw_only=True)
class WrapperTrainerConfig(TrainerConfig):
    """Holds another trainer config, as the distributed trainer does."""

    trainer_type = "dacapo_trainers:Trainer"
    trainer_config: TrainerConfig
    augments: list[AugmentConfig] = attrs.Factory(list)
    snapshot_interval: int | None = None


@pytest.fixture
def converter() -> ConfigConverter:
    registry = Registry.isolated(
        MirrorTrainerConfig, WrapperTrainerConfig, ScaleAugmentConfig, AugmentConfig
    )
    return ConfigConverter(registry)


# In the layout of DaCapo 0.3.5's converter: "__type__" first, then the fields in order.
DACAPO_JSON = (
    '{"__type__": "MirrorTrainerConfig", "name": "dummy_trainer", "batch_size": 2, '
    '"learning_rate": 1e-05, "mirror_augment": true}'
)


def test_dacapo_written_json_round_trips_exactly(converter: ConfigConverter) -> None:
    config = converter.structure(json.loads(DACAPO_JSON), TaggedConfig)
    assert config == MirrorTrainerConfig(
        name="dummy_trainer", batch_size=2, learning_rate=1e-5, mirror_augment=True
    )
    assert json.dumps(converter.unstructure(config)) == DACAPO_JSON


def test_nested_trainer_and_augments_round_trip(converter: ConfigConverter) -> None:
    data = {
        "__type__": "WrapperTrainerConfig",
        "name": "w",
        "batch_size": 1,
        "learning_rate": 0.1,
        "trainer_config": json.loads(DACAPO_JSON),
        "augments": [
            {"__type__": "ScaleAugmentConfig", "augmentation_probability": 0.5, "scale": 2.0}
        ],
        "snapshot_interval": 10,
    }
    config = converter.structure(data, TaggedConfig)
    assert isinstance(config.trainer_config, MirrorTrainerConfig)
    assert isinstance(config.augments[0], ScaleAugmentConfig)
    assert converter.unstructure(config) == data
    assert converter.structure(converter.unstructure(config), TaggedConfig) == config


def issues(converter: ConfigConverter, data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        converter.structure(data, TaggedConfig)
    return [str(issue) for issue in caught.value.issues]


def test_errors_are_path_qualified(converter: ConfigConverter) -> None:
    data = {
        "__type__": "WrapperTrainerConfig",
        "name": "w",
        "batch_size": True,
        "learning_rate": "big",
        "trainer_config": {
            "__type__": "MirrorTrainerConfig",
            "name": "d",
            "batch_size": 1,
            "learning_rate": 1,
            "mirror_augmnt": True,
        },
        "augments": [
            {"__type__": "ScaleAugmentConfig"},
            {"__type__": "ScaleAugmentConfig", "scale": "big"},
            {"scale": 1},
        ],
    }
    assert issues(converter, data) == [
        "$.batch_size: expected int, got True",
        "$.learning_rate: expected float, got 'big'",
        "$.trainer_config.mirror_augment: required field is missing",
        "$.trainer_config.mirror_augmnt: unknown key for MirrorTrainerConfig (did you mean "
        "'mirror_augment'?); known keys: name, batch_size, learning_rate, mirror_augment",
        "$.augments[1].scale: expected float, got 'big'",
        "$.augments[2]: missing '__type__': say which AugmentConfig type this is (e.g. "
        "AugmentConfig, ScaleAugmentConfig); `dacapo-trainers plugins` lists the installed types",
    ]


def test_wrong_kind_and_validators(converter: ConfigConverter) -> None:
    data = {
        "__type__": "WrapperTrainerConfig",
        "name": "w",
        "batch_size": 0,
        "learning_rate": 1.0,
        "trainer_config": {"__type__": "ScaleAugmentConfig"},
    }
    assert issues(converter, data) == [
        "$.trainer_config: 'ScaleAugmentConfig' cannot be used here: trainer config (a "
        "subclass of TrainerConfig) is expected",
    ]
    data["trainer_config"] = json.loads(DACAPO_JSON)
    assert issues(converter, data) == ["$.batch_size: must be at least 1, got 0"]


def test_missing_type_and_not_a_mapping(converter: ConfigConverter) -> None:
    assert issues(converter, {"name": "x"})[0].startswith("$: missing '__type__'")
    assert issues(converter, [1]) == ["$: expected config (a mapping with '__type__'), got a list"]


def test_yaml_numbers_in_strings_are_floats(converter: ConfigConverter) -> None:
    data = json.loads(DACAPO_JSON)
    data["learning_rate"] = "1e-4"  # what PyYAML makes of `learning_rate: 1e-4`
    assert converter.structure(data, TaggedConfig).learning_rate == 1e-4


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "c.yaml",
            "__type__: MirrorTrainerConfig\nname: d\nbatch_size: 2\n"
            "learning_rate: 1e-05\nmirror_augment: true\n",
        ),
        (
            "c.yml",
            "{__type__: MirrorTrainerConfig, name: d, batch_size: 2, "
            "learning_rate: 0.00001, mirror_augment: yes}",
        ),
        ("c.json", DACAPO_JSON.replace("dummy_trainer", "d")),
        (
            "c.toml",
            '__type__ = "MirrorTrainerConfig"\nname = "d"\nbatch_size = 2\n'
            "learning_rate = 1e-05\nmirror_augment = true\n",
        ),
    ],
)
def test_load_every_format(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    registry = Registry.isolated(MirrorTrainerConfig)
    config = load_config(path, registry=registry)
    assert config == MirrorTrainerConfig(
        name="d", batch_size=2, learning_rate=1e-5, mirror_augment=True
    )


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.json", '{"a": 1,,}', "JSON syntax error at line 1, column 9"),
        ("bad.yaml", "a: [1, 2\nb: 3\n", "YAML syntax error at line 2"),
        ("bad.toml", "a = = 1", "TOML syntax error"),
        ("bad.ini", "", "unsupported file type '.ini'"),
        ("tag.yaml", "!!python/object:os.system {}", "YAML syntax error"),
    ],
)
def test_file_errors(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, registry=Registry.isolated())
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", registry=Registry.isolated())


def test_programmatic_registration() -> None:
    registry = Registry.isolated(MirrorTrainerConfig)
    assert registry.get("MirrorTrainerConfig") is MirrorTrainerConfig
    registry.register(MirrorTrainerConfig)  # same class again: no-op

    @attrs.define(kw_only=True)
    class MirrorTrainerConfig2(TrainerConfig):
        trainer_type = "x:y"

    MirrorTrainerConfig2.__name__ = "MirrorTrainerConfig"
    with pytest.raises(DuplicateTypeError, match="already registered"):
        registry.register(MirrorTrainerConfig2)


def test_register_a_plugin_object() -> None:
    from dacapo_trainers import hookimpl

    class Plugin:
        @hookimpl
        def dacapo_trainers_trainer_configs(self) -> list[type[TrainerConfig]]:
            return [MirrorTrainerConfig]

        @hookimpl
        def dacapo_trainers_component_configs(self) -> list[type[TaggedConfig]]:
            return [ScaleAugmentConfig]

    registry = Registry.isolated(Plugin())
    assert registry.get("ScaleAugmentConfig") is ScaleAugmentConfig
    assert "MirrorTrainerConfig" in registry.available_names()
