"""Errors of distributed training. Both are :class:`dacapo_trainers.TrainingError`\\ s.

Class tree::

    dacapo_trainers.TrainingError
    +-- RankFailureError      a collective failed: another rank died, hangs, or left
    +-- LaunchError           the worker processes could not be started or failed
"""

from __future__ import annotations

from collections.abc import Sequence

from dacapo_trainers import TrainingError


class RankFailureError(TrainingError):
    """A collective (gradient all-reduce, barrier, start) failed on this rank.

    :param rank: the rank that raised it.
    :param stage: what it was waiting for ("the gradient all-reduce of iteration 4").
    :param missing: the ranks that had not reached ``stage`` (empty where unknown).
    """

    def __init__(self, message: str, *, rank: int, stage: str, missing: Sequence[int]) -> None:
        super().__init__(message)
        self.rank = rank
        self.stage = stage
        self.missing = tuple(missing)


class LaunchError(TrainingError):
    """Starting the worker processes, or their rendezvous, failed."""
