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
        +-- OutputFolderError           the output folder cannot be used
        |   +-- OutputLockedError       another training holds it (pid and host known)
        +-- CheckpointError             no intact checkpoint to resume from
        +-- ChunkReadError              a chunk of an input array cannot be read
        +-- TrainingFailedError         something raised during training (cause chained)

    RunInterrupted (BaseException)      SIGINT or SIGTERM stopped the run
    DacapoTrainersWarning (UserWarning) something was repaired or skipped (a damaged checkpoint)

Errors keep what they are about (``issues``, ``record``, ``holder``) and chain their cause.
``RunInterrupted`` derives from :class:`BaseException`, like :class:`KeyboardInterrupt`, so
that no ``except Exception`` in a trainer or a data pipeline swallows a stop request.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._plugins._discovery import PluginRecord


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


class OutputFolderError(TrainingError):
    """The run's output folder cannot be used: not a folder, not writable, or damaged."""


class OutputLockedError(OutputFolderError):
    """Another training holds the output folder. ``holder`` is what its lock file records.

    ``holder`` holds ``pid``, ``host`` and ``started`` (an ISO time) where the lock file could
    be read, and is empty otherwise.
    """

    def __init__(self, message: str, holder: Mapping[str, object]) -> None:
        self.holder = dict(holder)
        super().__init__(message)


class CheckpointError(TrainingError):
    """No checkpoint of the run can be used to resume (each one is damaged or refused)."""


class ChunkReadError(TrainingError):
    """A chunk of an input array cannot be read (corrupt, truncated, gone): the message names
    the dataset and the array where known, the chunk and its voxels; the codec's or store's
    error is chained. During a run it stops the run like any failure in training
    (:class:`TrainingFailedError`, checkpoints kept)."""


class TrainingFailedError(TrainingError):
    """Something raised while the run trained; ``iteration`` is where, the cause is chained.

    Every checkpoint written before is kept; the message says which one a re-run resumes from.
    """

    def __init__(self, message: str, iteration: int) -> None:
        self.iteration = iteration
        super().__init__(message)


class RunInterrupted(BaseException):
    """SIGINT or SIGTERM stopped the run.

    ``iteration`` is the number of iterations completed when it stopped (None before training
    started) and ``checkpoint`` the checkpoint a re-run resumes from (None: starts over).
    :attr:`exit_status` is what a shell reports for the signal (130 for SIGINT, 143 for
    SIGTERM).
    """

    def __init__(
        self,
        message: str,
        signal_number: int,
        iteration: int | None = None,
        checkpoint: Path | None = None,
    ) -> None:
        self.signal_number = signal_number
        self.iteration = iteration
        self.checkpoint = checkpoint
        super().__init__(message)

    @property
    def exit_status(self) -> int:
        """``128 + signal number``, as a shell reports a process the signal ended."""
        return 128 + self.signal_number


class DacapoTrainersWarning(UserWarning):
    """Something was repaired or skipped so that a run could go on (e.g. a damaged checkpoint
    set aside); the message says what and where."""


def chunk_read_error(error: BaseException) -> ChunkReadError | None:
    """The :class:`ChunkReadError` behind ``error``: itself, or the first one among its causes
    and contexts (a data pipeline may wrap it, as gunpowder wraps a node's error)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ChunkReadError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def first_line(error: BaseException, limit: int | None = 200, empty: str | None = None) -> str:
    """The first line of ``error``'s message, cut to ``limit`` characters; where the message is
    empty, ``empty`` (default: the error's type name)."""
    text = str(error).strip()
    if not text:
        return empty if empty is not None else type(error).__name__
    return text.splitlines()[0][:limit]


def flat_message(error: BaseException, limit: int | None = None) -> str:
    """``error``'s whole message on one line (runs of whitespace joined), cut to ``limit``
    characters; ``"(no message)"`` where it is empty."""
    text = " ".join(str(error).split())
    return text[:limit] if text else "(no message)"


def raised_in(error: BaseException) -> str:
    """``"folder/module.py:123 in function"``: the innermost frame of ``error``'s traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    where = Path(frame.filename)
    return f"{where.parent.name}/{where.name}:{frame.lineno} in {frame.name}"
