"""``new-plugin --base TYPE``: what a plugin deriving from an installed trainer config needs.

The base is selected through the registry like any run file's type, so any installed trainer
config type works (first-party or not). The new config subclasses it; the new trainer
subclasses the trainer its ``trainer_type`` names; the package depends on the base's
distribution within its compatible range.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import attrs

from .._contract._config import TrainerConfig
from .._errors import PluginError
from .._plugins._discovery import compatible_requirement
from .._plugins._optional_hooks import demo_settings
from .._plugins._registry import Registry, default_registry

_PLAIN = (bool, int, float, str, type(None))


class BaseTypeError(ValueError):
    """The ``--base`` type cannot be derived from (unknown, not a trainer config, broken)."""


@attrs.frozen
class BaseType:
    """An installed trainer config type a new plugin derives from."""

    config_class: str
    #: The module to import the config class from (its package where the package exports it).
    config_module: str
    trainer_class: str
    trainer_module: str
    #: The requirement on the base's distribution (None: the core's own type).
    requirement: str | None
    #: Fields the generated tests set: the kit's fast-learning values and the plain values of
    #: the plugin's own demo settings (``dacapo_trainers_demo_settings``).
    settings: dict[str, Any]

    def settings_literal(self) -> str:
        """:attr:`settings` as a Python dict literal after ``SETTINGS = ``: on one line where
        it fits 100 columns, else one item a line."""
        items = [f"{json.dumps(key)}: {_literal(value)}" for key, value in self.settings.items()]
        one_line = "{" + ", ".join(items) + "}"
        if len("SETTINGS = ") + len(one_line) <= 100:
            return one_line
        return "{\n" + "".join(f"    {item},\n" for item in items) + "}"


def _literal(value: Any) -> str:
    """A plain value as Python source (strings with double quotes, as ruff writes them)."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def resolve_base(type_name: str, registry: Registry | None = None) -> BaseType:
    """The installed trainer config ``type_name``, as a base for a new plugin.

    :raises BaseTypeError: with the reason and what to do.
    """
    registry = default_registry() if registry is None else registry
    try:
        cls = registry.get(type_name, kind="trainer", base=TrainerConfig)
    except PluginError as error:
        raise BaseTypeError(f"--base {type_name}: {error}") from None
    if not issubclass(cls, TrainerConfig):
        raise BaseTypeError(
            f"--base {type_name}: {type_name} derives from {cls.__mro__[1].__name__}, not "
            "TrainerConfig; name a trainer config type (`dacapo-trainers plugins` lists them)"
        )
    trainer_module, _, trainer_class = str(cls.trainer_type).partition(":")
    if not isinstance(cls.__dict__.get("trainer_type", cls.trainer_type), str) or not (
        trainer_module and trainer_class
    ):
        raise BaseTypeError(
            f"--base {type_name}: its trainer_type is not a 'package.module:Class' string, so "
            "the new trainer cannot name its base class"
        )
    record = next(r for r in registry.records() if r.type_name == type_name)
    requirement = None
    if record.distribution is not None and not record.is_builtin:
        requirement = compatible_requirement(record.distribution, record.version or "")
    fields = attrs.fields_dict(cls)
    settings: dict[str, Any] = {"batch_size": 2, "learning_rate": 3e-3}
    if "warmup_iterations" in fields:
        settings["warmup_iterations"] = 5
    for key, value in demo_settings(type_name, registry).items():
        # plain values only: nested configs (augments) would make the kit's toy problem
        # noisier, and the tests set snapshots themselves
        if key in fields and key != "snapshot_interval" and isinstance(value, _PLAIN):
            settings.setdefault(key, value)
    return BaseType(
        config_class=cls.__name__,
        config_module=_public_module(cls.__module__, cls.__name__),
        trainer_class=trainer_class,
        trainer_module=_public_module(trainer_module, trainer_class),
        requirement=requirement,
        settings=settings,
    )


def _public_module(module: str, name: str) -> str:
    """The top-level package where its ``__all__`` exports ``name`` (no import of ``module``
    itself), else ``module``."""
    package = module.partition(".")[0]
    exported = getattr(importlib.import_module(package), "__all__", ())
    return package if name in exported else module
