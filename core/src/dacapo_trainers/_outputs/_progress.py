"""Progress of a run: a tqdm bar on a terminal, a plain line at a steady interval elsewhere.

With output redirected (a batch job's log, ``nohup``, a pipe) a bar would draw nothing until
the end; a line every :data:`INTERVAL_VARIABLE` seconds (default :data:`DEFAULT_INTERVAL_S`)
says how far the run is instead (and one at the end, where any came before), e.g.
``demo: iteration 120/300 (40%), loss 0.213, 1.9 it/s``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from .._contract._stats import TrainingIterationStats
from .._errors import ConfigError, ConfigIssue
from ..hookspecs import hookimpl

#: Seconds between two progress lines when stderr is not a terminal.
INTERVAL_VARIABLE = "DACAPO_TRAINERS_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0


def progress_interval() -> float:
    """The seconds between plain progress lines (:data:`INTERVAL_VARIABLE`).

    :raises ConfigError: the variable is not a number of seconds >= 0.
    """
    text = os.environ.get(INTERVAL_VARIABLE, "")
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise ConfigError(
            [ConfigIssue(INTERVAL_VARIABLE, f"expects seconds >= 0 (e.g. 30), got {text!r}")]
        )
    return seconds


class ProgressBar:
    """A tqdm progress bar with iteration, loss and it/s on a terminal; plain progress lines
    every :func:`progress_interval` seconds when stderr is not one; nothing when quiet."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._bar: Any = None
        self._lines: ProgressLines | None = None

    @hookimpl
    def dacapo_trainers_train_start(self, run: Any, start_iteration: int) -> None:
        if self.quiet:
            return
        if not sys.stderr.isatty():
            self._lines = ProgressLines(run.name, run.num_iterations, start_iteration)
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=run.num_iterations,
            initial=start_iteration,
            desc=run.name,
            unit="it",
            dynamic_ncols=True,
        )

    @hookimpl
    def dacapo_trainers_train_iteration_end(self, stats: TrainingIterationStats) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{stats.loss:.4g}", refresh=False)
            self._bar.update(1)
        elif self._lines is not None:
            self._lines.update(stats)

    @hookimpl
    def dacapo_trainers_train_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._lines is not None:
            self._lines.finish()
            self._lines = None


class ProgressLines:
    """One line on stderr at most every ``interval`` seconds, and one at the end of a run that
    printed any."""

    def __init__(self, name: str, total: int, start: int) -> None:
        self.name, self.total, self.start = name, total, start
        self.interval = progress_interval()
        self.began = self.last_line = time.monotonic()
        self.stats: TrainingIterationStats | None = None
        self.printed = False

    def update(self, stats: TrainingIterationStats) -> None:
        self.stats = stats
        if time.monotonic() - self.last_line >= self.interval:
            self._print()

    def finish(self) -> None:
        # the closing line only where lines came before (a short run stays silent, as before)
        if self.stats is not None and self.printed:
            self._print()

    def _print(self) -> None:
        assert self.stats is not None  # invariant: called after an iteration
        self.last_line = now = time.monotonic()
        self.printed = True
        done = self.stats.iteration + 1
        rate = (done - self.start) / max(now - self.began, 1e-9)
        share = f" ({100 * done // self.total}%)" if self.total else ""
        print(
            f"{self.name}: iteration {done}/{self.total}{share}, loss {self.stats.loss:.4g}, "
            f"{rate:.3g} it/s",
            file=sys.stderr,
            flush=True,
        )
