"""The built-in lifecycle observers: the stats writer and the progress bar.

They implement the hooks of :mod:`dacapo_trainers.hookspecs` like any third-party logger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._stats import TrainingIterationStats
from .hookspecs import hookimpl

STATS_FILE = "stats.jsonl"
LOSS_PLOT = "loss.png"


class StatsWriter:
    """Appends one JSON object per iteration to ``stats.jsonl``; draws ``loss.png``.

    Training lines are ``{"iteration", "loss", "time"}``; each validation adds a line
    ``{"iteration", "validation_loss"}`` (:func:`read_stats` skips those,
    :func:`read_validation_losses` reads them). On (re)start it keeps only the lines of
    iterations before the start iteration, so after a resume each line appears exactly once.
    ``loss.png`` is redrawn at every checkpoint and at the end.
    """

    def __init__(self, output: Path) -> None:
        self.path = output / STATS_FILE
        self.plot_path = output / LOSS_PLOT
        self._file: Any = None

    @hookimpl
    def dacapo_trainers_train_start(self, start_iteration: int) -> None:
        kept = [line for line in _records(self.path) if line[0]["iteration"] < start_iteration]
        temporary = self.path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(text + "\n" for _, text in kept))
        temporary.replace(self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed at train end

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
        plot_loss(read_stats(self.path), self.plot_path)

    @hookimpl(trylast=True)
    def dacapo_trainers_train_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        plot_loss(read_stats(self.path), self.plot_path)


def _line(stats: TrainingIterationStats) -> str:
    record = {"iteration": stats.iteration, "loss": stats.loss, "time": stats.time}
    return json.dumps(record) + "\n"


def _records(path: Path) -> list[tuple[dict[str, Any], str]]:
    """The JSON objects of a ``stats.jsonl`` file with an integer ``iteration``, and their text.

    A torn last line (killed mid-write) is skipped.
    """
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("iteration"), int):
            records.append((record, line))
    return records


def read_validation_losses(path: Path) -> list[tuple[int, float]]:
    """``(iteration, validation loss)`` of each validation line of a ``stats.jsonl`` file."""
    losses = []
    for record, _ in _records(path):
        try:
            losses.append((int(record["iteration"]), float(record["validation_loss"])))
        except (KeyError, TypeError, ValueError):
            continue
    return losses


def read_stats(path: Path) -> list[TrainingIterationStats]:
    """The training stats in a ``stats.jsonl`` file (validation lines and torn lines skipped)."""
    if not path.exists():
        return []
    stats = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            if "validation_loss" in record:
                continue
            stats.append(
                TrainingIterationStats(
                    iteration=int(record["iteration"]),
                    loss=float(record["loss"]),
                    time=float(record["time"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return stats


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
