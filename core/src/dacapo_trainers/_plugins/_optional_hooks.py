"""Calls of the optional provider hooks: answers a type's own plugin gives about it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import PluginError
from ._registry import Registry, default_registry


def demo_settings(trainer_type: str, registry: Registry | None = None) -> dict[str, Any]:
    """The fields the trainer's plugin suggests for a quick CPU run (its
    ``dacapo_trainers_demo_settings`` hook): used by ``demo`` and ``new-plugin --base``.

    Empty where the plugin does not implement the hook or the type cannot be loaded (a run
    selecting it then reports why).
    """
    registry = default_registry() if registry is None else registry
    try:
        registry.get(trainer_type, kind="trainer")
    except PluginError:
        return {}
    hook = registry.plugin_manager.hook.dacapo_trainers_demo_settings
    settings = hook(type_name=trainer_type)
    return dict(settings) if isinstance(settings, Mapping) else {}
