"""Packaging checks: the entry point, the registry, lazy imports and the core requirement.

They read the installed metadata the way the core's discovery does, through the same
functions (:mod:`dacapo_trainers._plugins._discovery`), so a plugin passes them exactly when the
registry lists it as ``ok``.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Iterable

import pytest
from packaging.utils import canonicalize_name

from .._configs._converter import unstructure_config
from .._contract._config import TrainerConfig
from .._plugins import _import_probe
from .._plugins._discovery import (
    CORE_DISTRIBUTION,
    ENTRY_POINT_GROUP,
    PluginState,
    core_requirement,
    core_requirements,
    core_version,
    incompatibility,
)
from .._plugins._registry import Registry
from ._kit_base import KitBase, _fail


def core_dependency_problem(
    distribution: str, requires: Iterable[str], installed_core: str
) -> str | None:
    """Why ``distribution`` (with these ``Requires-Dist`` lines) does not declare a
    requirement on the core that ``installed_core`` meets, with the fix; or None.

    The core's own distribution needs none.
    """
    if canonicalize_name(distribution) == CORE_DISTRIBUTION:
        return None
    requires = list(requires)
    suggestion = core_requirement(installed_core)
    if not core_requirements(requires):
        return (
            f"{distribution} does not declare a dependency on {CORE_DISTRIBUTION}; add "
            f'"{suggestion}" to [project] dependencies so that pip refuses a core whose '
            "Trainer contract it was not written for"
        )
    reason = incompatibility(requires, installed_core)
    if reason is not None:
        return (
            f"{distribution} {reason} (the registry marks it incompatible); test against a "
            f"matching core, or widen the range to e.g. {suggestion}"
        )
    return None


class PackagingChecks(KitBase):
    """The checks that need only the installed metadata and a fresh interpreter."""

    # -- discovery and lazy imports --------------------------------------------------------------

    def test_entry_point_is_declared(self, trainer_config: TrainerConfig) -> None:
        """The type name is an entry point of the group ``dacapo_trainers``, installed once."""
        name = type(trainer_config).type_name()
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        module = type(trainer_config).__module__.split(".")[0]
        if not found:
            _fail(
                f"no installed entry point is named {name!r} in the group "
                f"{ENTRY_POINT_GROUP!r}: add\n\n    [project.entry-points.{ENTRY_POINT_GROUP}]\n"
                f'    {name} = "{module}.plugin"\n\nto pyproject.toml (the value is the module '
                "implementing the hook dacapo_trainers_trainer_configs) and install the package "
                "(pip install -e .) so that its metadata is current"
            )
        distributions = sorted({ep.dist.metadata["Name"] for ep in found if ep.dist is not None})
        if len(distributions) > 1:
            _fail(
                f"the entry point {name!r} is installed by {len(distributions)} distributions "
                f"({', '.join(distributions)}); uninstall all but one, or rename the class"
            )

    def test_registry_loads_the_config_class(self, trainer_config: TrainerConfig) -> None:
        """A fresh :class:`~dacapo_trainers.Registry` selects the type and returns this class."""
        cls = type(trainer_config)
        name = cls.type_name()
        registry = Registry()
        loaded = registry.get(name, kind="trainer")
        record = next(r for r in registry.records() if r.type_name == name)
        if record.state is not PluginState.OK:
            _fail(f"the registry lists {name!r} as {record.state.value}: {record.error}")
        if loaded is not cls:
            _fail(
                f"the registry loaded {name!r} as {loaded.__module__}.{loaded.__qualname__}, "
                f"but the config under test is {cls.__module__}.{cls.__qualname__}: is the "
                "package importable twice (an installed copy and a source folder on sys.path)? "
                "Install it once, editable (pip install -e .), and import it by its package name"
            )

    def test_selecting_the_type_imports_nothing_heavy(self, trainer_config: TrainerConfig) -> None:
        """Selecting the type and validating the config imports no torch (in a new interpreter).

        ``dacapo-trainers plugins``, ``validate`` and ``show`` must stay fast and work where
        torch is broken; only building and running the trainer may import it.
        """
        name = type(trainer_config).type_name()
        data = unstructure_config(trainer_config)
        try:
            found = _import_probe.heavy_imports(name, data, self.heavy_modules)
        except _import_probe.ProbeError as error:
            _fail(
                f"selecting {name!r} and structuring the config in a fresh interpreter "
                f"failed:\n{error}"
            )
        if found:
            module, frames = next(iter(sorted(found.items())))
            chain = "\n".join(f"    {frame}" for frame in frames) or "    (no frames recorded)"
            others = sorted(set(found) - {module})
            also = f" (also: {', '.join(others)})" if others else ""
            _fail(
                f"selecting {name!r} and validating its config imported {module}{also}, "
                f"through:\n{chain}\n"
                f"The entry-point module and the config module must not import {module} at "
                "top level: set trainer_type to a 'package.module:TrainerClass' string, import "
                f"{module} only in the trainer's module, and import it there (or inside "
                "functions) only"
            )

    def test_requires_a_compatible_core(self, trainer_config: TrainerConfig) -> None:
        """The distribution declares a ``dacapo-trainers`` requirement the installed core meets."""
        name = type(trainer_config).type_name()
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        dists = [ep.dist for ep in found if ep.dist is not None]
        if not dists:
            pytest.skip(f"no installed distribution declares {name!r} (see the entry-point check)")
        dist = dists[0]
        problem = core_dependency_problem(
            dist.metadata["Name"], dist.requires or [], core_version()
        )
        if problem is not None:
            _fail(problem)
