"""Errors of dacapo-trainers. Every message is one paragraph a user can act on.

Class tree::

    DacapoTrainersError                 base of every expected failure
    +-- ConfigError                     bad config input; holds issues (path, message)
    +-- PluginError                     a plugin cannot be used; holds the plugin record
    |   +-- UnknownTypeError            no installed plugin provides the type name
    |   +-- PluginLoadError             importing the plugin or calling its hook failed
    |   +-- PluginContractError         the plugin does not provide what it promised
    |   +-- DuplicateTypeError          two distributions provide the same type name
    |   +-- PluginDisabledError         disabled by environment variable
    |   +-- IncompatiblePluginError     requires another dacapo-trainers version
    +-- TrainingError                   a run cannot start or cannot go on
        +-- CannotTrainError            the trainer refused the datasets (with its reason)
        +-- NonFiniteLossError          the loss became NaN or infinite

Errors keep what they are about (``issues``, ``record``) and chain their cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._discovery import PluginRecord


class DacapoTrainersError(Exception):
    """Base class of every expected dacapo-trainers failure."""


@attrs.define(frozen=True)
class ConfigIssue:
    """One problem in a config: where (``$.augments[1].scale``) and what."""

    path: str
    message: str
    #: The exception behind the issue when there is one worth showing (a broken plugin).
    error: BaseException | None = attrs.field(default=None, eq=False, repr=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(DacapoTrainersError):
    """A config (file or data) is malformed. ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue], source: str | None = None) -> None:
        self.issues = list(issues)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"invalid config {self.source}" if self.source else "invalid config"
        if len(self.issues) == 1:
            return f"{where}: {self.issues[0]}"
        listed = "; ".join(str(issue) for issue in self.issues)
        return f"{where} ({len(self.issues)} problems): {listed}"


class PluginError(DacapoTrainersError):
    """A plugin cannot be used. ``record`` describes it when known; ``plugin`` is the plugin
    object (module or instance) when it was loaded or given."""

    def __init__(
        self, message: str, record: PluginRecord | None = None, plugin: object = None
    ) -> None:
        self.record = record
        self.plugin = plugin
        super().__init__(message)


class UnknownTypeError(PluginError):
    """No installed (or registered) plugin provides a type name."""

    def __init__(self, message: str, type_name: str) -> None:
        self.type_name = type_name
        super().__init__(message)


class PluginLoadError(PluginError):
    """Importing a plugin's entry point or calling its hook raised; the cause is chained."""


class PluginContractError(PluginError):
    """A plugin loaded but does not provide the type its entry point promised."""


class DuplicateTypeError(PluginError):
    """Two distributions provide the same type name."""


class PluginDisabledError(PluginError):
    """The plugin is disabled through ``DACAPO_TRAINERS_DISABLE``."""


class IncompatiblePluginError(PluginError):
    """The plugin requires a dacapo-trainers version other than the installed one."""


class TrainingError(DacapoTrainersError):
    """A training run cannot start or cannot go on."""


class CannotTrainError(TrainingError):
    """The trainer refused the datasets; the message carries its reason."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
