"""The plugin as the core sees it: entry points, lazy imports, DaCapo JSON, public names."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import attrs
import pytest
import torch
from gunpowder_helpers import TinyTask, tiny_model, write_volume

import dacapo_trainers_gunpowder
from dacapo_trainers import Registry, RunConfig, structure_config, unstructure_config
from dacapo_trainers._cli._demo_setup import demo_run_data
from dacapo_trainers_gunpowder import (
    ElasticAugmentConfig,
    GunpowderTrainerConfig,
    SimpleAugmentConfig,
    plugin,
)
from dacapo_trainers_gunpowder._augment_configs import AUGMENT_CONFIGS
from dacapo_trainers_gunpowder._em_augment_configs import EM_AUGMENT_CONFIGS

DACAPO_JSON = """
{"__type__":"GunpowderTrainerConfig","name":"default_gp_trainer","batch_size":2,
 "learning_rate":0.0001,"num_data_fetchers":8,
 "augments":[{"__type__":"ElasticAugmentConfig","control_point_spacing":[100,100,100],
   "control_point_displacement_sigma":[10.0,10.0,10.0],"rotation_interval":[0.0,1.5707963],
   "subsample":8,"uniform_3d_rotation":true,"augmentation_probability":1.0},
  {"__type__":"SimpleAugmentConfig","augmentation_probability":1.0}],
 "snapshot_interval":1000,"min_masked":0.15,"clip_raw":false,"gt_min_reject":null}
"""


def test_entry_points_name_every_config_class() -> None:
    entry_points = metadata.distribution("dacapo-trainers-gunpowder").entry_points
    declared = {ep.name: ep.value for ep in entry_points if ep.group == "dacapo_trainers"}
    provided = plugin.dacapo_trainers_trainer_configs() + plugin.dacapo_trainers_component_configs()
    assert sorted(declared) == sorted(cls.__name__ for cls in provided)
    assert set(declared.values()) == {"dacapo_trainers_gunpowder.plugin"}
    assert plugin.dacapo_trainers_trainer_configs() == [GunpowderTrainerConfig]
    assert plugin.dacapo_trainers_component_configs() == [*AUGMENT_CONFIGS, *EM_AUGMENT_CONFIGS]


def test_importing_the_plugin_and_configs_imports_no_torch_or_gunpowder() -> None:
    code = (
        "import sys, json\n"
        "import dacapo_trainers_gunpowder.plugin as p\n"
        "from dacapo_trainers_gunpowder import GunpowderTrainerConfig, ElasticAugmentConfig\n"
        "p.dacapo_trainers_trainer_configs(); p.dacapo_trainers_component_configs()\n"
        "GunpowderTrainerConfig(name='n', batch_size=1, learning_rate=1.0, augments=[\n"
        "    ElasticAugmentConfig(control_point_spacing=[1, 1, 1],\n"
        "        control_point_displacement_sigma=[1.0, 1.0, 1.0], rotation_interval=[0, 1])])\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('torch', 'gunpowder', 'funlib', 'scipy'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []


def test_all_is_complete_and_sorted() -> None:
    defined_here = {
        name
        for name, value in vars(dacapo_trainers_gunpowder).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("dacapo_trainers_gunpowder.")
    }
    assert sorted(dacapo_trainers_gunpowder.__all__) == dacapo_trainers_gunpowder.__all__
    # every public class imported into the package is exported (the trainer comes lazily)
    assert defined_here <= set(dacapo_trainers_gunpowder.__all__)
    assert set(dacapo_trainers_gunpowder.__all__) - defined_here == {
        "GunpowderTrainer",
        "__version__",
    }


def test_every_field_has_help_text() -> None:
    for cls in (GunpowderTrainerConfig, *AUGMENT_CONFIGS, *EM_AUGMENT_CONFIGS):
        for field in attrs.fields(cls):
            assert field.metadata.get("help_text"), f"{cls.__name__}.{field.name}"


def test_dacapo_json_structures_and_round_trips() -> None:
    config = structure_config(json.loads(DACAPO_JSON), GunpowderTrainerConfig)
    assert config == GunpowderTrainerConfig(
        name="default_gp_trainer",
        batch_size=2,
        learning_rate=0.0001,
        num_data_fetchers=8,
        augments=[
            ElasticAugmentConfig(
                control_point_spacing=[100, 100, 100],
                control_point_displacement_sigma=[10.0, 10.0, 10.0],
                rotation_interval=(0.0, 1.5707963),
                subsample=8,
                uniform_3d_rotation=True,
            ),
            SimpleAugmentConfig(),
        ],
        snapshot_interval=1000,
    )
    assert structure_config(unstructure_config(config), GunpowderTrainerConfig) == config


def test_dacapo_json_trains_unchanged(tmp_path: Path) -> None:
    config = structure_config(json.loads(DACAPO_JSON), GunpowderTrainerConfig)
    dataset = write_volume(tmp_path, (24, 24, 24))
    model = tiny_model((10, 10, 10))
    trainer = config.build_trainer()
    trainer.seed = 0
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, TinyTask())
    with trainer:
        assert len(trainer.worker_pids) == 8
        stats = list(trainer.iterate(2, model, optimizer, torch.device("cpu")))
    assert [s.iteration for s in stats] == [0, 1]
    # DaCapo's warmup: RAdam from 1% of the learning rate over 1000 iterations
    assert isinstance(optimizer, torch.optim.RAdam)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 * (0.01 + 0.99 * 2 / 1000))


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (GunpowderTrainerConfig, {"num_data_fetchers": -1}, "num_data_fetchers"),
        (GunpowderTrainerConfig, {"min_masked": 1.5}, "min_masked"),
        (GunpowderTrainerConfig, {"snapshot_interval": 0}, "snapshot_interval"),
        (SimpleAugmentConfig, {"augmentation_probability": 2.0}, "augmentation_probability"),
    ],
)
def test_invalid_values_are_refused(cls: type, data: dict[str, object], message: str) -> None:
    base = {"name": "n", "batch_size": 1, "learning_rate": 1.0}
    kwargs = {**base, **data} if cls is GunpowderTrainerConfig else data
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_the_demo_settings_hook_gives_valid_fields_for_this_trainer_only() -> None:
    """The demo's settings come from this plugin's hook: they exist and validate."""
    from dacapo_trainers import structure_config
    from dacapo_trainers_gunpowder import plugin

    settings = plugin.dacapo_trainers_demo_settings(type_name="GunpowderTrainerConfig")
    assert settings is not None
    data = {"__type__": "GunpowderTrainerConfig", "name": "demo", "batch_size": 2}
    config = structure_config({**data, "learning_rate": 1e-3, **settings})
    assert isinstance(config, GunpowderTrainerConfig)
    assert config.num_data_fetchers == settings["num_data_fetchers"] == 2
    assert [type(a).__name__ for a in config.augments] == ["SimpleAugmentConfig"]
    assert plugin.dacapo_trainers_demo_settings(type_name="SimpleAugmentConfig") is None
    assert plugin.dacapo_trainers_demo_settings(type_name="OtherTrainerConfig") is None


def test_the_demo_takes_its_trainer_settings_from_the_plugins_hook(tmp_path: Path) -> None:
    """The core keeps no demo settings of its own: the plugin's hook supplies them."""
    registry = Registry()
    run = demo_run_data("GunpowderTrainerConfig", 10, tmp_path, registry)
    assert run["trainer_config"]["num_data_fetchers"] == 2
    assert run["trainer_config"]["augments"] == [{"__type__": "SimpleAugmentConfig"}]
    config = structure_config(run, RunConfig, registry=registry)
    assert config.trainer_config.num_data_fetchers == 2
