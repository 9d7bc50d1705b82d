"""The built-in lifecycle observers: the stats writer and the progress bar.

They implement the hooks of :mod:`dacapo_trainers.hookspecs` like any third-party logger.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ._atomic import temporary_path, write_text
from ._stats import TrainingIterationStats
from .hookspecs import hookimpl

STATS_FILE = "stats.jsonl"
LOSS_PLOT = "loss.png"


class StatsWriter:
    """Appends one JSON object per iteration to ``stats.jsonl``; draws ``loss.png``.

    On (re)start it keeps only the lines of iterations before the start iteration, so after a
    resume each iteration appears exactly once. Lines that cannot be read (not UTF-8, not a
    stats record) are dropped then; where such a line is not just the torn last line of a
    killed run, the file as it was is kept as ``stats.jsonl.damaged`` first. ``loss.png`` is
    redrawn at every checkpoint and at the end. Every rewrite is atomic (unique temporary
    file, ``os.replace``).
    """

    def __init__(self, output: Path) -> None:
        self.path = output / STATS_FILE
        self.plot_path = output / LOSS_PLOT
        self._file: Any = None

    @hookimpl
    def dacapo_trainers_train_start(self, start_iteration: int) -> None:
        stats, unreadable = _read_stats(self.path)
        if unreadable:
            shutil.copyfile(self.path, self.path.with_name(self.path.name + ".damaged"))
        kept = [s for s in stats if s.iteration < start_iteration]
        write_text(self.path, "".join(_line(s) for s in kept))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed at train end

    @hookimpl
    def dacapo_trainers_train_iteration_end(self, stats: TrainingIterationStats) -> None:
        self._file.write(_line(stats))
        self._file.flush()

    @hookimpl
    def dacapo_trainers_train_checkpoint_written(self) -> None:
        self._plot()

    @hookimpl(trylast=True)
    def dacapo_trainers_train_end(self, error: BaseException | None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            self._plot()
        except OSError:
            if error is None:
                raise
            # The run already failed (often for the same reason: a full disk); its error is
            # the one to report, and loss.png is redrawn by the next run.

    def _plot(self) -> None:
        # plot_loss writes through a temporary named after its target: give it a unique target.
        unique = temporary_path(self.plot_path, ".png")
        try:
            plot_loss(read_stats(self.path), unique)
            if unique.exists():
                os.replace(unique, self.plot_path)
        finally:
            unique.unlink(missing_ok=True)


def _line(stats: TrainingIterationStats) -> str:
    record = {"iteration": stats.iteration, "loss": stats.loss, "time": stats.time}
    return json.dumps(record) + "\n"


def read_stats(path: Path) -> list[TrainingIterationStats]:
    """The stats in a ``stats.jsonl`` file; unreadable lines (a torn last line of a killed
    run, bytes that are not UTF-8) are skipped."""
    return _read_stats(path)[0]


def _read_stats(path: Path) -> tuple[list[TrainingIterationStats], bool]:
    """The stats, and whether a line other than the last one could not be read."""
    if not path.exists():
        return [], False
    stats = []
    lines = path.read_bytes().splitlines()
    unreadable = False
    for number, line in enumerate(lines):
        try:
            record = json.loads(line.decode("utf-8"))
            stats.append(
                TrainingIterationStats(
                    iteration=int(record["iteration"]),
                    loss=float(record["loss"]),
                    time=float(record["time"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            unreadable = unreadable or (number < len(lines) - 1 and bool(line.strip()))
    return stats, unreadable


def plot_loss(stats: list[TrainingIterationStats], path: Path) -> None:
    """Draw the loss curve (and a running mean) to ``path`` with matplotlib."""
    if not stats:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    iterations = np.array([s.iteration for s in stats])
    losses = np.array([s.loss for s in stats])
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(iterations, losses, linewidth=0.6, alpha=0.5, label="loss")
    window = max(1, len(losses) // 20)
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axes.plot(iterations[window - 1 :], smooth, linewidth=1.5, label=f"mean of {window}")
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss")
    if np.all(losses > 0):
        axes.set_yscale("log")
    axes.legend()
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)


class ProgressBar:
    """A tqdm progress bar with iteration, loss and it/s; silent when not a TTY or quiet."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._bar: Any = None

    @hookimpl
    def dacapo_trainers_train_start(self, run: Any, start_iteration: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=run.num_iterations,
            initial=start_iteration,
            desc=run.name,
            unit="it",
            disable=True if self.quiet else None,  # None: off when stderr is not a TTY
            dynamic_ncols=True,
        )

    @hookimpl
    def dacapo_trainers_train_iteration_end(self, stats: TrainingIterationStats) -> None:
        self._bar.set_postfix(loss=f"{stats.loss:.4g}", refresh=False)
        self._bar.update(1)

    @hookimpl
    def dacapo_trainers_train_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
