"""The registry's errors name what fits: an unknown type lists the installed types of the kind
the field takes, not every type of every kind."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

from dacapo_trainers import (
    ConfigError,
    Registry,
    TaggedConfig,
    TrainerConfig,
    UnknownTypeError,
    structure_config,
)
from dacapo_trainers._plugins._known import (
    distribution_of,
    install_command,
    known_distributions,
    source_folder,
)


@attrs.define(kw_only=True)
class CutAugmentConfig(TaggedConfig):
    size: int = 2


@attrs.define(kw_only=True)
class ShiftAugmentConfig(CutAugmentConfig):
    pass


@attrs.define(kw_only=True)
class OtherComponentConfig(TaggedConfig):
    pass


@attrs.define(kw_only=True)
class AugmentingTrainerConfig(TrainerConfig):
    trainer_type: ClassVar[str] = "nowhere:Trainer"
    augments: list[CutAugmentConfig] = attrs.field(factory=list)


TRAINER = {"name": "t", "batch_size": 1, "learning_rate": 0.1}


def test_an_unknown_nested_type_lists_only_the_types_its_field_takes() -> None:
    registry = Registry.isolated(
        CutAugmentConfig, ShiftAugmentConfig, OtherComponentConfig, AugmentingTrainerConfig
    )
    data = {
        "__type__": "AugmentingTrainerConfig",
        **TRAINER,
        "augments": [{"__type__": "ShiftAugmentConfg"}],
    }
    with pytest.raises(ConfigError) as caught:
        structure_config(data, registry=registry)
    [issue] = caught.value.issues
    assert issue.path == "$.augments[0]"
    assert issue.message == (
        "unknown CutAugmentConfig type 'ShiftAugmentConfg' (did you mean 'ShiftAugmentConfig'?); "
        "installed CutAugmentConfig types: CutAugmentConfig, ShiftAugmentConfig"
    )


def test_an_unknown_trainer_lists_installed_trainers_only() -> None:
    registry = Registry()
    with pytest.raises(UnknownTypeError) as caught:
        registry.get("NoSuchTrainerConfig", kind="trainer", base=TrainerConfig)
    listed = str(caught.value).partition("installed trainer types: ")[2].split(", ")
    loaded = registry.load_all()
    # exactly the installed trainer types (whichever plugins this environment has), no others
    assert sorted(listed) == sorted(n for n, c in loaded.items() if issubclass(c, TrainerConfig))
    assert "DummyTrainerConfig" in listed  # the core's own
    assert not {"UNetConfig", "AffinitiesTaskConfig", "ZarrDatasetConfig"} & set(listed)


def test_without_a_base_every_type_is_listed() -> None:
    registry = Registry.isolated(CutAugmentConfig, OtherComponentConfig)
    with pytest.raises(UnknownTypeError, match=r"installed config types: .*OtherComponentConfig"):
        registry.get("Nothing")


def test_known_distributions_are_data_that_names_a_type_not_installed() -> None:
    assert "dacapo-trainers-gunpowder" in known_distributions()
    assert distribution_of("ElasticAugmentConfig") == "dacapo-trainers-gunpowder"
    assert distribution_of("MyOwnTrainerConfig") is None
    registry = Registry(entry_points=[])  # nothing installed
    with pytest.raises(UnknownTypeError) as caught:
        registry.get("GunpowderTrainerConfg", kind="trainer", base=TrainerConfig)
    install = install_command("dacapo-trainers-gunpowder")
    assert str(caught.value) == (
        "unknown trainer type 'GunpowderTrainerConfg' (did you mean 'GunpowderTrainerConfig'?); "
        f"'GunpowderTrainerConfig' is provided by dacapo-trainers-gunpowder: {install}; "
        "installed trainer types: none"
    )


def test_a_published_type_typed_right_is_not_suggested_back() -> None:
    registry = Registry(entry_points=[])  # nothing installed
    with pytest.raises(UnknownTypeError) as caught:
        registry.get("GunpowderTrainerConfig", kind="trainer", base=TrainerConfig)
    assert "did you mean" not in str(caught.value)
    assert "'GunpowderTrainerConfig' is provided by dacapo-trainers-gunpowder" in str(caught.value)


def test_the_install_hint_names_the_plugin_folder_of_a_source_install() -> None:
    """Installed from a checkout (as every nox session installs it), the core names the
    plugin's folder there; installed from an index, the distribution's name."""
    text = importlib.metadata.distribution("dacapo-trainers").read_text("direct_url.json")
    url = json.loads(text or "{}").get("url", "")
    checkout = Path(__file__).resolve().parents[3]
    if url.startswith("file:") and Path(url.removeprefix("file://")).resolve() == checkout / "core":
        folder = checkout / "plugins" / "gunpowder"
        assert source_folder("dacapo-trainers-gunpowder") == folder
        assert install_command("dacapo-trainers-gunpowder") == f"pip install {folder}"
    else:
        assert (
            install_command("dacapo-trainers-gunpowder") == "pip install dacapo-trainers-gunpowder"
        )
    assert source_folder("dacapo-trainers-nonexistent") is None
