"""Snapshot previews: ``snapshots/ITERATION.png`` next to every snapshot, drawn off the loop.

One row per array of the snapshot (raw, gt, target, prediction, weight, mask, gradients, then
any other array), one panel per channel, each the central z plane of that array
(:mod:`._snapshot_slices`). Intensities:

- raw: the 1st to 99th percentile of the plane, grey;
- gt of an integer dtype: instance colours, a fixed pseudo-random colour per id, 0 black;
- weight: from 0 to its maximum; mask: 0 to 1, grey, labelled with the share of the plane
  inside it;
- gradients: symmetric around 0 (the 99th percentile of the magnitude), blue-white-red;
- target, prediction and anything else: their own range (over all channels shown).

Each panel's x label gives the range the colours span. Only matplotlib's object API is used
(no pyplot), so drawing in the observer's worker thread is safe.
"""

from __future__ import annotations

import queue
import textwrap
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._arrays._zarr_io import ZarrContainer
from .._contract._protocols import LocalContainerIdentifier
from ..hookspecs import hookimpl
from ._atomic import atomic_writer
from ._output_folder import PREVIEWS
from ._snapshot_slices import ArraySlice, read_snapshot_slices
from ._tensorboard import snapshot_iterations

PANEL_INCHES = 2.3
#: The trainer's snapshot container in the output folder.
SNAPSHOT_CONTAINER = "snapshots.zarr"


def preview_path(output: Path, iteration: int) -> Path:
    """``OUTPUT/snapshots/ITERATION.png``, the iteration zero-padded like the checkpoints."""
    return output / PREVIEWS / f"{iteration:08d}.png"


def label_colours(labels: Any) -> Any:
    """RGB colours (float, ``(..., 3)``) for integer ids: a fixed colour per id, 0 black.

    The colour is a hash of the id alone, so an id keeps its colour across planes, snapshots
    and runs: a random hue, saturation 0.55 to 1 and value 0.75 to 1 (vivid, never dark).
    """
    import numpy as np
    from matplotlib.colors import hsv_to_rgb

    ids = np.asarray(labels).astype(np.uint64)
    mixed = ids * np.uint64(0x9E3779B97F4A7C15)  # wraps modulo 2**64 (Fibonacci hashing)
    mixed ^= mixed >> np.uint64(29)
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(32)
    shifts = np.array([0, 16, 32], dtype=np.uint64)
    hue, saturation, value = np.moveaxis(
        ((mixed[..., None] >> shifts) & np.uint64(0xFFFF)).astype(np.float64) / 0xFFFF, -1, 0
    )
    hsv = np.stack([hue, 0.55 + 0.45 * saturation, 0.75 + 0.25 * value], axis=-1)
    colours = np.asarray(hsv_to_rgb(hsv), dtype=np.float64)
    colours[ids == 0] = 0.0
    return colours


def _is_labels(cut: ArraySlice) -> bool:
    import numpy as np

    return cut.name == "gt" and np.issubdtype(cut.dtype, np.integer)


def value_range(cut: ArraySlice) -> tuple[float, float]:
    """The values the colours of ``cut`` span (see the module docstring)."""
    import numpy as np

    values = np.asarray(cut.planes, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (0.0, 1.0)
    if cut.name == "raw":
        low, high = np.percentile(finite, [1, 99])
    elif cut.name == "weight":
        low, high = 0.0, finite.max()
    elif cut.name == "mask":
        low, high = 0.0, max(1.0, finite.max())
    elif cut.name == "gradients":
        high = np.percentile(np.abs(finite), 99)
        low = -high
    else:
        low, high = finite.min(), finite.max()
    if high <= low:  # a constant plane: any non-empty span shows it
        high = low + 1.0
    return (float(low), float(high))


def _range_label(name: str, plane: Any, low: float, high: float) -> str:
    """A panel's legend: the range its colours span; for a mask, what white and black mean
    (an all-white panel would otherwise read as empty)."""
    import numpy as np

    if name == "mask":
        inside = float(np.count_nonzero(np.asarray(plane) > 0)) / max(1, np.asarray(plane).size)
        return f"white: in ({inside:.0%}), black: out"
    return f"[{low:.3g}, {high:.3g}]"


def _colour_map(name: str) -> str:
    return {"raw": "gray", "mask": "gray", "gradients": "RdBu_r"}.get(name, "viridis")


def preview_figure(slices: Sequence[ArraySlice], title: str) -> Any:
    """A matplotlib ``Figure``: one row per array, one panel per channel shown.

    Panel titles are the array's name (``target[0]``, ``target[1]`` for channels); each row's
    y label gives the array's spatial shape and the plane shown.
    """
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    columns = max([1, *(len(cut.planes) for cut in slices)])
    rows = max(1, len(slices))
    width = PANEL_INCHES * max(columns, 2) + 0.6
    figure = Figure(figsize=(width, PANEL_INCHES * rows + 0.9), layout="constrained")
    grid = figure.add_gridspec(rows, columns)
    output = next((c for n in ("prediction", "target") for c in slices if c.name == n), None)
    for row, cut in enumerate(slices):
        low, high = value_range(cut)
        for column in range(columns):
            axes = figure.add_subplot(grid[row, column])
            axes.set_xticks([])
            axes.set_yticks([])
            if column >= len(cut.planes):
                axes.set_axis_off()
                continue
            plane = cut.planes[column]
            if _is_labels(cut):
                axes.imshow(label_colours(plane), interpolation="nearest")
                axes.set_xlabel(f"{np.count_nonzero(np.unique(plane))} ids in plane")
            else:
                axes.imshow(
                    plane,
                    cmap=_colour_map(cut.name),
                    vmin=low,
                    vmax=high,
                    interpolation="nearest",
                )
                axes.set_xlabel(_range_label(cut.name, plane, low, high), fontsize="small")
            name = cut.name if cut.channels == 1 else f"{cut.name}[{column}]"
            if column == len(cut.planes) - 1 and cut.channels > len(cut.planes):
                name += f" (of {cut.channels})"
            axes.set_title(name)
            if column == 0:
                where = ", ".join(f"{axis}={index}" for axis, index in cut.cut)
                shape = " x ".join(str(s) for s in cut.spatial_shape)
                axes.set_ylabel(f"{shape}\n{where}" if where else shape, fontsize="small")
            if cut.name == "raw" and output is not None and output is not cut:
                box = _field_of_view(cut, output)
                if box is not None:
                    axes.add_patch(
                        Rectangle(
                            (box[0], box[1]),
                            box[2],
                            box[3],
                            fill=False,
                            linestyle="--",
                            lw=1.0,
                            edgecolor="yellow",
                            label=f"{output.name} field of view",
                        )
                    )
    note = "the central z plane of each array, each at its own extent and voxel size" + (
        f" (dashed on raw: the {output.name}'s field of view)" if output is not None else ""
    )
    figure.suptitle("\n".join([title, *textwrap.wrap(note, int(width * 11))]), fontsize="medium")
    return figure


def _field_of_view(raw: ArraySlice, output: ArraySlice) -> tuple[float, float, float, float] | None:
    """``(x, y, width, height)`` in raw's pixels of the output's plane, if it lies inside."""
    (raw_rows, raw_cols), (out_rows, out_cols) = raw.plane_extent(), output.plane_extent()
    row_size, col_size = raw.voxel_size[-2], raw.voxel_size[-1]
    inside = (
        raw_rows[0] <= out_rows[0]
        and out_rows[1] <= raw_rows[1]
        and raw_cols[0] <= out_cols[0]
        and out_cols[1] <= raw_cols[1]
    )
    if not inside or (out_rows, out_cols) == (raw_rows, raw_cols):
        return None
    return (
        (out_cols[0] - raw_cols[0]) / col_size - 0.5,
        (out_rows[0] - raw_rows[0]) / row_size - 0.5,
        (out_cols[1] - out_cols[0]) / col_size,
        (out_rows[1] - out_rows[0]) / row_size,
    )


def missing_previews(output: Path, before: int) -> list[int]:
    """The snapshot iterations before ``before`` in ``OUTPUT/snapshots.zarr`` without their
    preview (a killed run's queue)."""
    return [
        iteration
        for iteration in snapshot_iterations(output / SNAPSHOT_CONTAINER)
        if iteration < before and not preview_path(output, iteration).exists()
    ]


def write_preview(container: LocalContainerIdentifier, iteration: int, path: Path) -> Path:
    """Draw snapshot ``iteration`` of ``container`` to ``path`` (written atomically)."""
    slices = read_snapshot_slices(container, iteration)
    figure = preview_figure(slices, f"snapshot of iteration {iteration}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, "wb") as file:  # readers (TensorBoard logger) see whole files
        figure.savefig(file, format="png", dpi=80)
    return path


class SnapshotPreviews:
    """Writes ``snapshots/ITERATION.png`` for every snapshot, on one background thread.

    At the start it also draws the previews a killed run left undrawn (snapshots before the
    start iteration without their PNG), so that every snapshot ends with its preview.

    Reading the snapshot and drawing it takes a good fraction of a second; the training thread
    only puts ``(iteration, container)`` on a queue. The queue is drained at the end of the run
    (also after an error), so every snapshot written gets its preview. A preview that cannot be
    drawn is a warning (and an entry of :attr:`failures`), never the end of the run: the
    snapshot itself is intact.
    """

    def __init__(self, output: Path) -> None:
        self.output = output
        self.failures: list[str] = []
        self._queue: queue.Queue[tuple[int, LocalContainerIdentifier] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @hookimpl
    def dacapo_trainers_train_start(self, start_iteration: int) -> None:
        self._thread = threading.Thread(
            target=self._work, name="dacapo-trainers-previews", daemon=True
        )
        self._thread.start()
        # Previews queued when an earlier try was killed are drawn now; snapshots after the
        # checkpoint the run resumes from are written (and announced) again.
        container = ZarrContainer(self.output / SNAPSHOT_CONTAINER)
        for iteration in missing_previews(self.output, start_iteration):
            self._queue.put((iteration, container))

    @hookimpl
    def dacapo_trainers_train_snapshot_written(
        self, iteration: int, container: LocalContainerIdentifier
    ) -> None:
        # A preview left by an earlier try of this iteration (before a resume) is stale now;
        # readers that wait for the file must not take it for this snapshot's.
        preview_path(self.output, iteration).unlink(missing_ok=True)
        self._queue.put((iteration, container))

    # tryfirst: the previews are all on disk before other observers' train_end reads them.
    @hookimpl(tryfirst=True)
    def dacapo_trainers_train_end(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            iteration, container = job
            try:
                if not self.output.is_dir():  # moved or deleted: not made again here
                    raise FileNotFoundError(f"the output folder {self.output} is gone")
                write_preview(container, iteration, preview_path(self.output, iteration))
            except Exception as error:  # a view must not end the run
                message = (
                    f"no preview of snapshot {iteration} in {container.container}: "
                    f"{type(error).__name__}: {error}"
                )
                self.failures.append(message)
                warnings.warn(message, RuntimeWarning, stacklevel=1)
