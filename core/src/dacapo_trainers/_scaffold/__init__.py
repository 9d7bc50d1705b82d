"""The plugin scaffold: ``dacapo-trainers new-plugin NAME`` writes a complete plugin package.

The templates (``templates/*.tmpl``, :class:`string.Template` syntax) are a real, working
plugin: a config class, a minimal in-memory trainer, the entry point, tests that run the
conformance kit, and a README.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import keyword
import re
import string
import sys
from pathlib import Path

import attrs

from .._plugins._discovery import core_requirement, discover
from .._plugins._known import known_distributions
from ._base import BaseTypeError, resolve_base

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*Config$")
#: The longest type name: the generated files keep their own 100-column limit with it.
MAX_TYPE_NAME = 40
#: The longest plugin (distribution) name, for the same reason.
MAX_NAME = 40
_PREFIX = "dacapo-trainers-"
#: The line limit the generated package sets for itself (ruff's line-length).
_LINE_LIMIT = 100
_SUFFIX = "-trainer"
#: Top-level modules a plugin must not shadow.
_RESERVED = {"dacapo_trainers", "dacapo", "torch", "numpy", "gunpowder", "test", "tests"}


class ScaffoldError(ValueError):
    """The plugin cannot be written: a bad name, a taken name, or a folder in the way."""


@attrs.frozen
class PluginNames:
    """Every name of a new plugin, derived from its distribution name (and type name).

    ``my-trainer`` gives the module ``my_trainer``, the trainer ``MyTrainer`` and the config
    (and type name) ``MyTrainerConfig``; a leading ``dacapo-trainers-`` is left out of the
    class names. A chosen type name (``--type-name LsdConfig``) names the config class, and
    the trainer class is it without ``Config``, ending in ``Trainer`` (``LsdTrainer``).
    """

    distribution: str
    module: str
    trainer_class: str
    config_class: str

    @classmethod
    def from_name(cls, name: str, type_name: str | None = None) -> PluginNames:
        """Check ``name`` (and ``type_name``) and derive the others.

        Raises :class:`ScaffoldError` with advice.
        """
        if not _NAME.match(name):
            raise ScaffoldError(
                f"invalid plugin name {name!r}: use lowercase letters, digits and single "
                "hyphens, starting with a letter (e.g. my-trainer); it becomes the "
                "distribution name, and with underscores the module name"
            )
        if len(name) > MAX_NAME:
            raise ScaffoldError(
                f"the plugin name {name!r} is {len(name)} characters long; use at most "
                f"{MAX_NAME} (it names the module, which the generated code repeats)"
            )
        module = name.replace("-", "_")
        if keyword.iskeyword(module) or module in sys.stdlib_module_names or module in _RESERVED:
            raise ScaffoldError(
                f"invalid plugin name {name!r}: the module {module!r} would shadow "
                f"{'a Python keyword' if keyword.iskeyword(module) else 'an existing module'}; "
                "choose another name (e.g. my-trainer)"
            )
        if importlib.util.find_spec(module) is not None:
            raise ScaffoldError(
                f"invalid plugin name {name!r}: a module named {module!r} is already "
                "installed; choose another name"
            )
        advice = "plugin name (or a --type-name)" if type_name is None else "--type-name"
        if type_name is None:
            base = name.removeprefix(_PREFIX).removesuffix(_SUFFIX)
            trainer_class = "".join(part.capitalize() for part in base.split("-")) + "Trainer"
            type_name = trainer_class + "Config"
        elif not _TYPE_NAME.match(type_name):
            raise ScaffoldError(
                f"invalid type name {type_name!r}: use a CamelCase Python class name ending in "
                "Config, letters and digits only (e.g. LsdTrainerConfig); it names the config "
                'class, the entry point and the "__type__" of run files'
            )
        else:
            stem = type_name.removesuffix("Config")
            trainer_class = stem if stem.endswith("Trainer") else stem + "Trainer"
        if len(type_name) > MAX_TYPE_NAME:
            raise ScaffoldError(
                f"the type name {type_name!r} is {len(type_name)} characters long; use at most "
                f"{MAX_TYPE_NAME} (run files and the generated code repeat it): choose a "
                f"shorter {advice}"
            )
        core_names = set(importlib.import_module("dacapo_trainers").__all__)
        for class_name in (trainer_class, type_name):
            if class_name in core_names:
                raise ScaffoldError(
                    f"the plugin's class {class_name!r} would shadow dacapo_trainers."
                    f"{class_name} in its own modules; choose another {advice}"
                )
        return cls(name, module, trainer_class, type_name)


def check_available(names: PluginNames) -> None:
    """Refuse a type name another installed or first-party plugin already uses."""
    taken = {record.type_name: record.label for record in discover(environ={})}
    for package, types in known_distributions().items():
        for type_name in types:
            taken.setdefault(type_name, package)
    if names.config_class in taken:
        raise ScaffoldError(
            f"the type name {names.config_class!r} is already provided by "
            f"{taken[names.config_class]}; choose another plugin name or --type-name"
        )


def _files(names: PluginNames, derived: bool) -> dict[str, str]:
    """Destination path (relative) -> template name."""
    module = names.module
    variant = "_derived" if derived else ""
    return {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": f"README{variant}.md.tmpl",
        ".gitignore": "gitignore.tmpl",
        f"src/{module}/__init__.py": "__init__.py.tmpl",
        f"src/{module}/plugin.py": "plugin.py.tmpl",
        f"src/{module}/config.py": f"config{variant}.py.tmpl",
        f"src/{module}/trainer.py": f"trainer{variant}.py.tmpl",
        f"src/{module}/py.typed": "",
        f"tests/test_{module}_config.py": f"test_config{variant}.py.tmpl",
        f"tests/test_{module}_conformance.py": f"test_conformance{variant}.py.tmpl",
    }


def write_plugin(
    name: str,
    destination: Path,
    *,
    core: str | None = None,
    type_name: str | None = None,
    base: str | None = None,
) -> list[Path]:
    """Write the plugin package ``name`` into ``destination`` (missing or empty).

    :param core: the core version to require (default: the installed one).
    :param type_name: the config class and type name (default: derived from ``name``).
    :param base: an installed trainer config type the new config subclasses (its trainer
        subclasses the base's trainer); default: a minimal in-memory batch trainer.
    :returns: the files written.
    :raises ScaffoldError: bad or taken name, unusable base, or ``destination`` is a file or
        not empty.
    """
    names = PluginNames.from_name(name, type_name)
    check_available(names)
    derived = None
    if base is not None:
        try:
            derived = resolve_base(base)
        except BaseTypeError as error:
            raise ScaffoldError(str(error)) from None
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ScaffoldError(
            f"{destination} already exists and is not an empty folder; choose another --dir "
            "or remove it"
        )
    requirement = core_requirement(core)
    values = {
        "distribution": names.distribution,
        "module": names.module,
        "trainer_class": names.trainer_class,
        "config_class": names.config_class,
        "core_requirement": requirement,
        "core_next": requirement.rpartition("<")[2] if "<" in requirement else "release",
        "trainer_type": _fitting(f'"{names.module}.trainer:{names.trainer_class}"', 34),
    }
    if derived is not None:
        values |= {
            "base_config": derived.config_class,
            "base_config_module": derived.config_module,
            "base_trainer": derived.trainer_class,
            "base_trainer_module": derived.trainer_module,
            "base_requirement": derived.requirement or requirement,
            "settings": derived.settings_literal(),
        }
    templates = importlib.resources.files(__name__) / "templates"
    written = []
    for relative, template in _files(names, derived is not None).items():
        text = ""
        if template:
            source = (templates / template).read_text(encoding="utf-8")
            text = string.Template(source).substitute(values)
        if relative == "pyproject.toml" and derived is not None and derived.requirement:
            text = _add_dependency(text, derived.requirement, derived.config_class)
        path = destination / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _fitting(value: str, column: int) -> str:
    """``value`` as written after ``column`` characters of its line: as it is where the line
    stays within 100 columns, else in parentheses on a line of its own."""
    if column + len(value) <= _LINE_LIMIT:
        return value
    return f"(\n        {value}\n    )"


def _add_dependency(pyproject: str, requirement: str, base: str) -> str:
    """``pyproject`` with ``requirement`` (the base's distribution) after the core's."""
    marker = "    # The trainer itself"
    line = f'    # {base}, which the config and trainer extend.\n    "{requirement}",\n'
    return pyproject.replace(marker, line + marker, 1)
