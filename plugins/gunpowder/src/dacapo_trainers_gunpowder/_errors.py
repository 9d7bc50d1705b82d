"""Errors of the gunpowder trainer. Imports no torch and no gunpowder.

Class tree::

    dacapo_trainers.TrainingError
    +-- DataWorkerError       a data worker process failed or died while producing batches

Data it cannot train on is refused before training with a :class:`ValueError` from
``build_batch_provider``, which the driver reports as a
:class:`dacapo_trainers.CannotTrainError`.
"""

from __future__ import annotations

from dacapo_trainers import TrainingError

#: How a worker's traceback follows the one-line description in the worker's report.
TRACEBACK_MARKER = "\nworker traceback:\n"


class DataWorkerError(TrainingError):
    """A data worker process failed (its exception) or died (its exit code) before it produced
    a batch.

    The message is one paragraph: which worker, which batch, and the worker's exception as
    ``Type: message`` (gunpowder's nested errors reduced to the innermost one, with its node).
    The worker's traceback is kept in :attr:`worker_traceback` and attached as a note, so
    ``dacapo-trainers --debug`` prints it and the plain command does not.

    :param message: the description; a report that carries the worker's traceback after
        :data:`TRACEBACK_MARKER` (as the worker pool writes it) is split there.
    :param worker_traceback: the worker's formatted traceback, where known.
    """

    def __init__(self, message: str, *, worker_traceback: str | None = None) -> None:
        description, marker, trace = message.partition(TRACEBACK_MARKER)
        if worker_traceback is None and marker:
            worker_traceback = trace
        text = " ".join(description.split())
        if worker_traceback:
            text += " (--debug shows the worker's traceback)"
        super().__init__(text)
        #: The worker's formatted traceback, or None where it died without a word.
        self.worker_traceback = worker_traceback.rstrip() if worker_traceback else None
        if self.worker_traceback:
            self.add_note(f"worker traceback:\n{self.worker_traceback}")
