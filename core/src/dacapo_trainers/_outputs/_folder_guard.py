"""The observer that stops a run whose output folder is moved or deleted while it trains.

Without it the run would go on writing checkpoints and snapshots into a new, empty folder at
the old path (created again by the writers), apart from its earlier checkpoints. The guard
holds the folder open from the start of training and compares, after every iteration, the
folder at the output path with the one it holds; where they differ, the run stops before its
next checkpoint, saying where the folder (with its checkpoints) went.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import OutputFolderError
from ..hookspecs import hookimpl


class OutputFolderGuard:
    """Raises :class:`OutputFolderError` at the first iteration end after the output folder
    was moved, renamed or deleted."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self._descriptor: int | None = None

    @hookimpl(tryfirst=True)
    def dacapo_trainers_train_start(self) -> None:
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        self._descriptor = os.open(self.output, flags)

    @hookimpl(tryfirst=True)  # before other observers write to the folder of this iteration
    def dacapo_trainers_train_iteration_end(self, stats: object) -> None:
        if self._descriptor is None:
            return
        held = os.fstat(self._descriptor)
        try:
            named = os.stat(self.output)
        except FileNotFoundError:
            named = None
        if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
            return
        iteration = getattr(stats, "iteration", "?")
        raise OutputFolderError(
            f"the output folder {self.output} was {self._whereabouts()} while the run trained; "
            f"the run stopped after iteration {iteration} instead of going on in a new folder "
            f"at that path. {self._advice()}"
        )

    @hookimpl(trylast=True)
    def dacapo_trainers_train_end(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def _now_at(self) -> str | None:
        """Where the folder held open is now (Linux), None where unknown or deleted."""
        try:
            where = os.readlink(f"/proc/self/fd/{self._descriptor}")
        except OSError:
            return None
        return None if where.endswith(" (deleted)") else where

    def _whereabouts(self) -> str:
        now_at = self._now_at()
        if now_at is not None:
            return f"moved to {now_at}"
        if Path(f"/proc/self/fd/{self._descriptor}").exists():
            return "deleted"
        return "moved or deleted"

    def _advice(self) -> str:
        now_at = self._now_at()
        if now_at is not None:
            return (
                f"Its checkpoints are in {now_at}: move it back to {self.output} (removing "
                "whatever was made at that path meanwhile) and run the same command to resume, "
                "or set output to the new place"
            )
        return (
            "Its checkpoints went with it; where the folder was moved, move it back and run "
            "the same command to resume, or run it now to start over"
        )
