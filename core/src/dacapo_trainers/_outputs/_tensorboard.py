"""The TensorBoard logger (run-config key ``tensorboard: true``), an observer like any other.

It is written as a third party would write one (the hooks of :mod:`dacapo_trainers.hookspecs`
and the run's documented outputs, nothing else), and ``docs/runs.rst`` shows it as the example
of adding a logger. It needs the ``tensorboard`` package (``dacapo-trainers[tensorboard]``);
torch's ``SummaryWriter`` writes the event files, without TensorFlow.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .._errors import ConfigError, ConfigIssue
from ..hookspecs import hookimpl


def require_tensorboard() -> None:
    """Refuse ``tensorboard: true`` when the ``tensorboard`` package is not installed.

    :raises ConfigError: at ``$.tensorboard``, saying what to install.
    """
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            [
                ConfigIssue(
                    "$.tensorboard",
                    "true needs the tensorboard package, which is not installed: "
                    "pip install 'dacapo-trainers[tensorboard]' (or set tensorboard: false)",
                )
            ]
        )


class TensorBoardLogger:
    """Losses, learning rate, step time and snapshot previews in ``OUTPUT/tensorboard``.

    Scalars: ``loss/train``, ``loss/validation`` (runs that validate), ``learning_rate`` (of
    the first parameter group, as the step of that iteration used it) and
    ``seconds_per_iteration``; images: ``snapshots``, the previews ``snapshots/ITERATION.png``
    as they appear. View with ``tensorboard --logdir runs``.
    """

    def __init__(self) -> None:
        self.writer: Any = None
        self.optimizer: Any = None
        self.learning_rate = 0.0
        self.previews = Path()
        self.pending: list[tuple[int, Path]] = []  # snapshots whose preview is not drawn yet

    @hookimpl
    def dacapo_trainers_train_start(
        self, output: Path, optimizer: Any, start_iteration: int
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.previews = output / "snapshots"
        # Snapshots whose image a killed try never added (its preview was still queued): the
        # previews are drawn again at the start, and added here once on disk.
        logged = logged_image_steps(output / "tensorboard")
        self.pending = [
            (iteration, self.previews / f"{iteration:08d}.png")
            for iteration in snapshot_iterations(output / "snapshots.zarr")
            if iteration < start_iteration and iteration not in logged
        ]
        # A resumed run repeats the iterations after its last checkpoint. purge_step makes
        # TensorBoard's reader drop the events of those iterations that the first try wrote,
        # so every step appears once.
        self.writer = SummaryWriter(str(output / "tensorboard"), purge_step=start_iteration)
        self.optimizer = optimizer
        self.learning_rate = optimizer.param_groups[0]["lr"]

    @hookimpl
    def dacapo_trainers_train_iteration_end(self, stats: Any) -> None:
        step = stats.iteration
        self.writer.add_scalar("loss/train", stats.loss, step)
        self.writer.add_scalar("learning_rate", self.learning_rate, step)
        self.writer.add_scalar("seconds_per_iteration", stats.time, step)
        # Trainers step their schedules inside the iteration: this is the next step's rate.
        self.learning_rate = self.optimizer.param_groups[0]["lr"]
        self.add_drawn_previews()

    @hookimpl
    def dacapo_trainers_train_validation_end(self, iteration: int, loss: float) -> None:
        self.writer.add_scalar("loss/validation", loss, iteration)

    @hookimpl
    def dacapo_trainers_train_snapshot_written(self, iteration: int) -> None:
        # The preview is drawn in the background; it is added once its file exists.
        self.pending.append((iteration, self.previews / f"{iteration:08d}.png"))

    @hookimpl
    def dacapo_trainers_train_checkpoint_written(self) -> None:
        self.writer.flush()  # the event file keeps up with the checkpoints

    @hookimpl(trylast=True)  # after the previews are all drawn
    def dacapo_trainers_train_end(self) -> None:
        if self.writer is None:
            return
        self.add_drawn_previews()
        self.writer.close()
        self.writer = None

    def add_drawn_previews(self) -> None:
        """Add the pending previews whose PNG is on disk (written atomically: complete)."""
        if not self.pending:
            return
        from matplotlib.image import imread

        waiting = []
        for iteration, path in self.pending:
            if path.exists():
                image = imread(path)[..., :3]  # RGB(A) floats in [0, 1]
                self.writer.add_image("snapshots", image, iteration, dataformats="HWC")
            else:
                waiting.append((iteration, path))
        self.pending = waiting


def snapshot_iterations(container: Path) -> list[int]:
    """The iterations of the snapshots in ``OUTPUT/snapshots.zarr`` (groups named by number)."""
    if not container.is_dir():
        return []
    return sorted(int(p.name) for p in container.iterdir() if p.name.isdigit() and p.is_dir())


def logged_image_steps(folder: Path) -> set[int]:
    """The steps of the ``snapshots`` images TensorBoard shows from the event files in
    ``folder`` (events a resume purged are not counted)."""
    if not folder.is_dir():
        return set()
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={IMAGES: 0})
    events.Reload()
    if "snapshots" not in events.Tags().get("images", []):
        return set()
    return {event.step for event in events.Images("snapshots")}
