"""What the core knows about the first-party plugins matches their own metadata."""

from __future__ import annotations

import tomllib
from pathlib import Path

from dacapo_trainers._cli._demo_setup import DEMO_TRAINER_SETTINGS
from dacapo_trainers._plugins._known import known_distributions

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


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


def test_demo_settings_name_first_party_trainers() -> None:
    trainers = {name for types in _declared_types().values() for name in types}
    assert set(DEMO_TRAINER_SETTINGS) <= trainers
