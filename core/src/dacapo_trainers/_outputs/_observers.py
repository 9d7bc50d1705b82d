"""The built-in lifecycle observers: the stats writer (the progress bar is in ``_progress``).

They implement the hooks of :mod:`dacapo_trainers.hookspecs` like any third-party logger.
:func:`run_observers` lists what the driver registers for a run (these two, the guard of the
output folder, the snapshot previews, and the TensorBoard logger when the run asks for it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._contract._stats import TrainingIterationStats
from ..hookspecs import hookimpl
from ._atomic import atomic_writer, open_appending, write_text
from ._folder_guard import OutputFolderGuard
from ._previews import SnapshotPreviews
from ._progress import ProgressBar, progress_interval
from ._tensorboard import TensorBoardLogger, require_tensorboard

if TYPE_CHECKING:
    from .._configs._run_config import RunConfig

STATS_FILE = "stats.jsonl"
LOSS_PLOT = "loss.png"


def check_run_observers(run: RunConfig) -> None:
    """Refuse a run whose observers need a package that is missing (before anything runs).

    :raises ConfigError: naming the run-config key and what to install (or the environment
        variable that is malformed).
    """
    if run.tensorboard:
        require_tensorboard()
    progress_interval()  # a bad DACAPO_TRAINERS_PROGRESS_INTERVAL, before anything is written


def run_observers(run: RunConfig, output: Path, quiet: bool) -> list[object]:
    """The built-in observers of a run, which the driver registers before the caller's."""
    observers: list[object] = [
        OutputFolderGuard(output),
        StatsWriter(output),
        ProgressBar(quiet),
        SnapshotPreviews(output),
    ]
    if run.tensorboard:
        observers.append(TensorBoardLogger())
    return observers


class StatsWriter:
    """Appends one JSON object per iteration to ``stats.jsonl``; draws ``loss.png``.

    Training lines are ``{"iteration", "loss", "time"}``; each validation adds a line
    ``{"iteration", "validation_loss"}`` (:func:`read_stats` skips those,
    :func:`read_validation` reads them). On (re)start it keeps only the lines of iterations
    before the start iteration, so after a resume each line appears exactly once. Lines that
    cannot be read (not UTF-8, not a stats record) are dropped then; where such a line is not
    just the torn last line of a killed run, the file as it was is kept as
    ``stats.jsonl.damaged`` first. ``loss.png`` is redrawn at every checkpoint and at the end.
    Every rewrite is atomic (unique temporary file, ``os.replace``).
    """

    def __init__(self, output: Path) -> None:
        self.path = output / STATS_FILE
        self.plot_path = output / LOSS_PLOT
        self._file: Any = None

    @hookimpl
    def dacapo_trainers_train_start(self, start_iteration: int) -> None:
        records, unreadable = _records(self.path)
        if unreadable:  # an atomic copy: a link planted at the name is replaced, not followed
            with atomic_writer(self.path.with_name(self.path.name + ".damaged"), "wb") as copy:
                copy.write(self.path.read_bytes())
        kept = [text for record, text in records if record["iteration"] < start_iteration]
        write_text(self.path, "".join(text + "\n" for text in kept))
        self._file = open_appending(self.path)  # closed at train end

    @hookimpl
    def dacapo_trainers_train_iteration_end(self, stats: TrainingIterationStats) -> None:
        self._file.write(_line(stats))
        self._file.flush()

    @hookimpl
    def dacapo_trainers_train_validation_end(self, iteration: int, loss: float) -> None:
        record = {"iteration": iteration, "validation_loss": loss}
        self._file.write(json.dumps(record) + "\n")
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
        plot_loss(read_stats(self.path), self.plot_path, read_validation(self.path))


def _line(stats: TrainingIterationStats) -> str:
    record = {"iteration": stats.iteration, "loss": stats.loss, "time": stats.time}
    return json.dumps(record) + "\n"


def _records(path: Path) -> tuple[list[tuple[dict[str, Any], str]], bool]:
    """The JSON objects of a ``stats.jsonl`` file with an integer ``iteration``, with their
    text, and whether a line other than the last one could not be read.

    Unreadable lines (a torn last line of a killed run, bytes that are not UTF-8, not a
    record) are skipped.
    """
    if not path.exists():
        return [], False
    records = []
    lines = path.read_bytes().splitlines()
    unreadable = False
    for number, line in enumerate(lines):
        try:
            text = line.decode("utf-8")
            record = json.loads(text)
            if not (isinstance(record, dict) and isinstance(record.get("iteration"), int)):
                raise ValueError("not a stats record")
        except ValueError:
            unreadable = unreadable or (number < len(lines) - 1 and bool(line.strip()))
            continue
        records.append((record, text))
    return records, unreadable


def read_stats(path: Path) -> list[TrainingIterationStats]:
    """The training stats in a ``stats.jsonl`` file; validation lines and unreadable lines
    (a torn last line of a killed run, bytes that are not UTF-8) are skipped."""
    stats = []
    for record, _ in _records(path)[0]:
        try:
            stats.append(
                TrainingIterationStats(
                    iteration=int(record["iteration"]),
                    loss=float(record["loss"]),
                    time=float(record["time"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue  # a validation line
    return stats


def read_validation(path: Path) -> list[tuple[int, float]]:
    """The ``(iteration, validation_loss)`` records of a ``stats.jsonl`` file, by iteration.

    Validation records are the lines ``{"iteration": i, "validation_loss": v}``; training
    lines (and unreadable lines) are skipped. When a resumed run validated an iteration again,
    the last record of that iteration wins.
    """
    losses: dict[int, float] = {}
    for record, _ in _records(path)[0]:
        try:
            losses[int(record["iteration"])] = float(record["validation_loss"])
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(losses.items())


def plot_loss(
    stats: Sequence[TrainingIterationStats],
    path: Path,
    validation: Sequence[tuple[int, float]] = (),
) -> None:
    """Draw :func:`loss_figure` to ``path`` (atomically); nothing without data."""
    if not stats and not validation:
        return
    figure = loss_figure(stats, validation)
    with atomic_writer(path, "wb") as file:
        figure.savefig(file, format="png", dpi=100)


def loss_figure(
    stats: Sequence[TrainingIterationStats], validation: Sequence[tuple[int, float]] = ()
) -> Any:
    """The loss curve, its running mean and the validation loss, as a matplotlib ``Figure``.

    ``validation`` holds ``(iteration, loss)`` pairs (:func:`read_validation`), drawn as points
    joined by a line on the training loss's axes. The y axis is logarithmic when every value
    is positive.
    """
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: safe next to other threads' figures

    iterations = np.array([s.iteration for s in stats])
    losses = np.array([s.loss for s in stats])
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    if len(losses):
        axes.plot(iterations, losses, linewidth=0.6, alpha=0.5, label="loss")
    window = max(1, len(losses) // 20)
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axes.plot(iterations[window - 1 :], smooth, linewidth=1.5, label=f"mean of {window}")
    if validation:
        steps, values = zip(*validation, strict=True)
        axes.plot(steps, values, "o-", markersize=3, linewidth=1.2, label="validation loss")
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss")
    every = np.concatenate([losses, np.array([v for _, v in validation])])
    if np.all(every > 0):
        axes.set_yscale("log")
    axes.legend()
    return figure
