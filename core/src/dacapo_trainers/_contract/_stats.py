"""What one training iteration reports."""

from __future__ import annotations

import attrs


@attrs.define(frozen=True)
class TrainingIterationStats:
    """Statistics of one training iteration, as DaCapo's ``TrainingIterationStats``.

    :param iteration: the iteration this step completed (0-based, consecutive).
    :param loss: the loss value of the step.
    :param time: wall time of the step in seconds.
    """

    iteration: int
    loss: float
    time: float
