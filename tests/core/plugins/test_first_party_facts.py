"""What the core knows about the first-party plugins matches their own metadata."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import ClassVar

import attrs

from dacapo_trainers import Registry, TrainerConfig
from dacapo_trainers._cli._demo_setup import demo_run_data
from dacapo_trainers._plugins._known import known_distributions
from dacapo_trainers._plugins._optional_hooks import demo_settings

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def _declared_types() -> dict[str, set[str]]:
    """Each first-party distribution's entry-point names, from its pyproject.toml."""
    declared = {}
    for pyproject in sorted(PLUGINS.glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        names = project.get("entry-points", {}).get("dacapo_trainers", {})
        declared[project["name"]] = set(names)
    return declared


def test_first_party_types_are_what_the_plugins_declare() -> None:
    declared = _declared_types()
    assert declared, f"no plugin pyproject.toml under {PLUGINS}"
    assert {name: set(types) for name, types in known_distributions().items()} == declared


def test_a_trainer_without_the_hook_runs_the_demo_with_its_defaults(tmp_path: Path) -> None:
    @attrs.define(kw_only=True)
    class HooklessTrainerConfig(TrainerConfig):
        trainer_type: ClassVar[str] = "nowhere:Trainer"

    registry = Registry.isolated(HooklessTrainerConfig)
    trainer = demo_run_data("HooklessTrainerConfig", 10, tmp_path, registry)["trainer_config"]
    assert trainer == {
        "__type__": "HooklessTrainerConfig",
        "name": "demo",
        "batch_size": 2,
        "learning_rate": 1e-3,
    }
    # a type nothing provides: no settings, the run itself reports the unknown type
    assert demo_settings("NoSuchTrainerConfig", registry) == {}
