"""The reference parts are registered like any plugin and stay light to import."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import attrs
import cattrs
import pytest

import dacapo_trainers.reference as reference
from dacapo_trainers import ArchitectureConfig, DatasetConfig, StartConfig, TaskConfig
from dacapo_trainers.reference import (
    AffinitiesTaskConfig,
    BinarizeArrayConfig,
    CNNectomeUNetConfig,
    CropArrayConfig,
    DistanceTaskConfig,
    DummyTrainerConfig,
    IntensitiesArrayConfig,
    OneHotTaskConfig,
    RawGTDatasetConfig,
    TrainValidateDataSplitConfig,
    UNetConfig,
    ZarrArrayConfig,
    ZarrDatasetConfig,
)
from dacapo_trainers.reference import plugin as reference_plugin

COMPONENTS = [
    UNetConfig,
    CNNectomeUNetConfig,
    AffinitiesTaskConfig,
    OneHotTaskConfig,
    DistanceTaskConfig,
    ZarrDatasetConfig,
    RawGTDatasetConfig,
    TrainValidateDataSplitConfig,
    ZarrArrayConfig,
    IntensitiesArrayConfig,
    BinarizeArrayConfig,
    CropArrayConfig,
    StartConfig,
]
CONFIGS = [*COMPONENTS, DummyTrainerConfig]


def test_import_loads_neither_torch_nor_scipy() -> None:
    code = (
        "import sys, dacapo_trainers.reference, dacapo_trainers.reference.plugin\n"
        "heavy = sorted(m for m in ('torch', 'scipy', 'gunpowder') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_is_sorted_and_complete() -> None:
    assert reference.__all__ == sorted(reference.__all__)
    # "@py_builtins"/"@pytest_ar": pytest rewrites the package's asserts (dacapo_trainers
    # declares a pytest11 entry point), which adds these names; they are not API.
    public = {
        name for name in vars(reference) if not name.startswith(("_", "@")) and name != "plugin"
    }
    assert set(reference.__all__) == public


def test_hook_returns_the_config_classes() -> None:
    assert reference_plugin.dacapo_trainers_component_configs() == COMPONENTS
    assert reference_plugin.dacapo_trainers_trainer_configs() == [DummyTrainerConfig]
    assert issubclass(UNetConfig, ArchitectureConfig)
    assert issubclass(AffinitiesTaskConfig, TaskConfig)
    assert issubclass(OneHotTaskConfig, TaskConfig)
    assert issubclass(ZarrDatasetConfig, DatasetConfig)


def test_one_entry_point_per_type_name() -> None:
    declared = {ep.name: ep.value for ep in entry_points(group="dacapo_trainers")}
    for config in CONFIGS:
        assert declared.get(config.type_name()) == "dacapo_trainers.reference.plugin"


@pytest.mark.parametrize("config", CONFIGS)
def test_every_field_has_help_text(config: type) -> None:
    for field in attrs.fields(config):
        assert field.metadata.get("help_text"), f"{config.__name__}.{field.name}"


@pytest.mark.parametrize(
    "instance",
    [
        UNetConfig(name="unet", input_shape=[84, 84, 84], num_fmaps_out=4),
        AffinitiesTaskConfig(name="affs", neighborhood=[[1, 0], [0, 1]], balance_weights=False),
        OneHotTaskConfig(name="semantic", classes=["background", "cell"]),
        ZarrDatasetConfig(name="cells", container="a.zarr", mask="mask", sample_points=[[1, 2]]),
    ],
)
def test_configs_round_trip_through_cattrs(instance: object) -> None:
    converter = cattrs.Converter()
    data = converter.unstructure(instance)
    assert converter.structure(data, type(instance)) == instance
