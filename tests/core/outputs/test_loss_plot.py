"""loss.png: the training loss with the validation loss read from stats.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pluggy

from dacapo_trainers import TrainingIterationStats, hookspecs
from dacapo_trainers._outputs._observers import (
    StatsWriter,
    loss_figure,
    plot_loss,
    read_stats,
    read_validation,
)

VALIDATION = {9: 0.5, 19: 0.375, 29: 0.25, 39: 0.125}


def write_stats_file(path: Path) -> None:
    """40 training lines, a validation line every 10 iterations, a torn last line."""
    lines = []
    for iteration in range(40):
        lines.append({"iteration": iteration, "loss": 1.0 / (iteration + 1), "time": 0.1})
        if iteration % 10 == 9:
            lines.append({"iteration": iteration, "validation_loss": VALIDATION[iteration]})
    lines.append({"iteration": 19, "validation_loss": 0.3125})  # validated again after a resume
    text = "".join(json.dumps(line) + "\n" for line in lines)
    path.write_text(text + '{"iteration": 40, "validation_lo')


def test_read_validation_keeps_validation_records_only(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    write_stats_file(path)
    assert read_validation(path) == [(9, 0.5), (19, 0.3125), (29, 0.25), (39, 0.125)]
    assert [s.iteration for s in read_stats(path)] == list(range(40))  # they ignore each other
    assert read_validation(tmp_path / "absent.jsonl") == []


def test_loss_figure_draws_the_validation_loss_on_the_loss_axes(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    write_stats_file(path)
    figure = loss_figure(read_stats(path), read_validation(path))
    (axes,) = figure.axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert list(lines) == ["loss", "mean of 2", "validation loss"]
    np.testing.assert_array_equal(lines["validation loss"].get_xdata(), [9, 19, 29, 39])
    np.testing.assert_allclose(lines["validation loss"].get_ydata(), [0.5, 0.3125, 0.25, 0.125])
    assert axes.get_yscale() == "log"
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["loss", "mean of 2", "validation loss"]

    without = loss_figure(read_stats(path))
    assert [line.get_label() for line in without.axes[0].get_lines()] == ["loss", "mean of 2"]


def test_plot_loss_writes_the_png_and_only_with_data(tmp_path: Path) -> None:
    plot_loss([], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()
    plot_loss([], tmp_path / "validation-only.png", [(0, -1.0), (5, 0.5)])  # linear y axis
    assert (tmp_path / "validation-only.png").stat().st_size > 5_000
    stats = [TrainingIterationStats(i, 0.5, 0.1) for i in range(3)]
    plot_loss(stats, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 5_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "validation-only.png"]


def test_stats_writer_draws_validation_at_the_end(tmp_path: Path) -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(StatsWriter(tmp_path))
    hook = manager.hook
    hook.dacapo_trainers_train_start(
        run=None, trainer=None, model=None, optimizer=None, start_iteration=0, output=tmp_path
    )
    for iteration in range(4):
        stats = TrainingIterationStats(iteration, 1.0 - iteration / 10, 0.1)
        hook.dacapo_trainers_train_iteration_end(run=None, stats=stats, num_iterations=4)
    # What the validating driver adds to stats.jsonl (through the StatsWriter, elsewhere).
    with open(tmp_path / "stats.jsonl", "a") as file:
        file.write(json.dumps({"iteration": 3, "validation_loss": 0.8}) + "\n")
    hook.dacapo_trainers_train_end(run=None, iteration=4, error=None)
    assert read_validation(tmp_path / "stats.jsonl") == [(3, 0.8)]
    plain = tmp_path / "plain.png"
    plot_loss(read_stats(tmp_path / "stats.jsonl"), plain)
    # Same data but the validation point: the drawn picture differs.
    assert (tmp_path / "loss.png").read_bytes() != plain.read_bytes()
