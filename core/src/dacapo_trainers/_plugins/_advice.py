"""The registry's error messages: what is wrong with a type or its plugin, and what to do.

Each function words one failure; the registry decides when it happened.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

import pluggy

from .._errors import (
    DuplicateTypeError,
    IncompatiblePluginError,
    PluginDisabledError,
    PluginError,
    PluginLoadError,
    first_line,
    flat_message,
)
from ._discovery import DISABLE_ENV, PluginRecord, PluginState
from ._known import distribution_of, install_command, known_types

#: Words type names end in; a plugin's types share what comes before them (their stem).
_KIND_WORDS = re.compile(r"(Config|Trainer|Augment|Task|Array|Dataset|DataSplit|Start)+$")
_ENTRY_POINTS_TABLE = "[project.entry-points.dacapo_trainers]"


def stem(type_name: str) -> str:
    """``"CutmixAugmentConfig"`` -> ``"Cutmix"``: what a plugin's type names share."""
    return _KIND_WORDS.sub("", type_name) or type_name


def failure(error: BaseException) -> str:
    """``"ImportError: reason"``: a plugin's failure on one line."""
    if isinstance(error, pluggy.PluginValidationError):
        # pluggy's first line only names plugin and hook; the fault is on the lines after it
        text = flat_message(error)
    else:
        text = first_line(error, None, "")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def broken(record: PluginRecord, phase: str, error: BaseException) -> str:
    """A plugin that failed while ``phase`` (importing, calling its hooks)."""
    return (
        f"plugin {record.label} is broken: {phase} {record.target!r} failed with "
        f"{failure(error)}. Other plugins are unaffected. Fix or reinstall "
        f"{record.distribution}, or disable it with {DISABLE_ENV}={record.distribution}"
    )


def missing_class(record: PluginRecord, provided: Iterable[str], undeclared: list[str]) -> str:
    """An entry point whose plugin's hooks do not return the class it names."""
    names = ", ".join(sorted(provided)) or "nothing"
    if len(undeclared) == 1:  # the entry point misspells the one class left over
        fix = (
            f"the type name is the class name: rename the entry point {record.type_name!r} to "
            f"{undeclared[0]!r} in {_ENTRY_POINTS_TABLE} of {record.distribution}'s "
            "pyproject.toml, and reinstall it"
        )
    else:
        fix = f"return the class {record.type_name} from one of them, or remove the entry point"
    return (
        f"plugin {record.label} declares entry point {record.type_name!r} = {record.target!r}, "
        "but its hooks dacapo_trainers_trainer_configs and dacapo_trainers_component_configs "
        f"returned {names}; {fix}"
    )


def undeclared(type_name: str, record: PluginRecord, misnamed: bool) -> str:
    """``type_name`` is a class ``record``'s plugin returns, but no entry point declares it."""
    if misnamed:
        fix = (
            f"declares it as entry point {record.type_name!r}: the type name is the class "
            f"name, so rename the entry point to {type_name!r}"
        )
    else:
        fix = f'declares no entry point of that name: add `{type_name} = "{record.target}"`'
    return (
        f"{record.label} provides a class named {type_name!r} but {fix} in "
        f"{_ENTRY_POINTS_TABLE} of {record.distribution}'s pyproject.toml and reinstall it (an "
        "editable install whose pyproject.toml changed needs reinstalling too)"
    )


def unknown(type_name: str, kind: str, installed: list[str]) -> str:
    """Nothing installed provides ``type_name``; ``installed`` are the types of its kind."""
    message = f"unknown {kind} type {type_name!r}"
    published = known_types()
    close = difflib.get_close_matches(type_name, sorted({*installed, *published}), 1, 0.75)
    if close and close[0] != type_name:  # a published name typed right needs no suggestion
        message += f" (did you mean {close[0]!r}?)"
    wanted = type_name if type_name in published else (close[0] if close else None)
    package = distribution_of(wanted) if wanted is not None else None
    if package is not None and wanted not in installed:
        message += f"; {wanted!r} is provided by {package}: {install_command(package)}"
    listed = ", ".join(installed) if installed else "none"
    return f"{message}; installed {kind} types: {listed}"


def unusable(
    type_name: str, candidates: list[PluginRecord], causes: Mapping[str, BaseException]
) -> PluginError:
    """The error for a declared type none of whose ``candidates`` can be loaded."""
    duplicates = [r for r in candidates if r.state is PluginState.DUPLICATE]
    if duplicates:
        return DuplicateTypeError(str(duplicates[0].error), duplicates[0])
    record = candidates[0]
    if record.state is PluginState.BROKEN:
        error = PluginLoadError(
            f"plugin {record.label} providing {type_name!r} is broken: {record.error}. "
            f"Fix or reinstall {record.distribution}, or disable it with "
            f"{DISABLE_ENV}={record.distribution}",
            record,
        )
        error.__cause__ = causes.get(type_name)
        return error
    if record.state is PluginState.DISABLED:
        return PluginDisabledError(
            f"type {type_name!r} from {record.label} is disabled: {record.error}", record
        )
    return IncompatiblePluginError(
        f"type {type_name!r} from {record.label} cannot be used: {record.error}", record
    )
