"""One data worker process: what it is given, what it says, and its main function.

A worker is started (forked) with a :class:`WorkerSpec` and answers through its pipe with one
message per batch: :class:`BatchReady` (the batch is in one of its slots) or, once,
:class:`WorkerFailed` (its exception, after which it exits).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import sys
import traceback
from typing import Any

import attrs

from ._pipeline import PipelineSpec
from ._shared_memory import BatchLayout

#: How long (s) waiting processes sleep between checks that their peer is still alive.
POLL_INTERVAL = 0.5

#: The environment variable that sets the niceness added to data workers (0 to 19).
NICENESS_VARIABLE = "DACAPO_TRAINERS_GUNPOWDER_WORKER_NICENESS"

#: Niceness added to data workers unless :data:`NICENESS_VARIABLE` says otherwise. The training
#: step is the critical path and the workers have slack (prefetched batches): when cores are
#: contended, a worker should yield to the step's threads, whose parallel regions otherwise
#: stall while one of them is descheduled. When the workers fall behind, the training process
#: waits (sleeps) and they get the cores back.
DEFAULT_NICENESS = 10


def worker_niceness() -> int:
    """The niceness added to data workers: :data:`NICENESS_VARIABLE`, else the default.

    :raises ValueError: the variable is set to something other than an integer from 0 to 19.
    """
    text = os.environ.get(NICENESS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_NICENESS
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 19:
        raise ValueError(
            f"the environment variable {NICENESS_VARIABLE} is {text!r}; it must be an integer "
            f"from 0 to 19 (the niceness added to the gunpowder data workers; unset: "
            f"{DEFAULT_NICENESS})"
        )
    return value


@attrs.frozen
class WorkerSpec:
    """What worker ``worker`` of ``num_workers`` needs: it produces batches ``start_index +
    worker``, ``start_index + worker + num_workers``, ... into its ``depth`` slots of
    ``buffer`` (slot ``s`` of worker ``w`` at ``(w * depth + s) * layout.total_nbytes``)."""

    worker: int
    num_workers: int
    start_index: int
    pipeline: PipelineSpec
    layout: BatchLayout
    buffer: Any  # the producer's shared mapping
    depth: int
    free_slots: Any  # a semaphore: the worker's slots that the training process released
    connection: Any  # the sending end of the worker's pipe
    parent_pid: int
    niceness: int = DEFAULT_NICENESS

    def batch_index(self, j: int) -> int:
        """The index of the worker's ``j``-th batch."""
        return self.start_index + self.worker + j * self.num_workers


@attrs.frozen
class BatchReady:
    """Batch ``index`` is in the worker's slot ``slot``."""

    index: int
    slot: int


@attrs.frozen
class WorkerFailed:
    """The worker failed producing batch ``index`` (None: before its first batch) with the
    exception ``description`` (``"Type: message"``); ``trace`` is its formatted traceback."""

    index: int | None
    description: str
    trace: str


def worker_main(spec: WorkerSpec) -> None:
    """Produce the worker's batches in order until the training process closes the pipe or
    goes away; report a failure as :class:`WorkerFailed` and exit with status 1."""
    _set_up_process(spec.niceness)
    slot_bytes = spec.layout.total_nbytes
    first = spec.worker * spec.depth
    slots = [spec.layout.views(spec.buffer, (first + s) * slot_bytes) for s in range(spec.depth)]
    index: int | None = None
    try:
        with spec.pipeline.build() as producer:
            for j in itertools.count():
                index = spec.batch_index(j)
                while not spec.free_slots.acquire(timeout=POLL_INTERVAL):
                    if os.getppid() != spec.parent_pid:
                        return
                producer.fill(index, slots[j % spec.depth])
                spec.connection.send(BatchReady(index, j % spec.depth))
    except (BrokenPipeError, ConnectionResetError):
        return  # the training process is gone or closed us
    except BaseException as error:
        failure = WorkerFailed(index, describe(error), traceback.format_exc())
        with contextlib.suppress(OSError):
            spec.connection.send(failure)
        raise SystemExit(1) from None


def _set_up_process(niceness: int) -> None:
    # Ctrl-C reaches the whole process group; the training process decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness:
        os.nice(niceness)
    if "torch" in sys.modules:
        # Forked after torch set up its thread pool: keep any torch use here single-threaded.
        import torch

        torch.set_num_threads(1)
    # A worker is one thread of work: BLAS/OpenMP pools (numpy's OpenBLAS has one thread per
    # core, spinning when idle) would only compete with it and with the training step.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def describe(error: BaseException) -> str:
    """``"Type: message"``; for gunpowder's nested request errors, the innermost one's."""
    if not type(error).__module__.startswith("gunpowder"):
        return f"{type(error).__name__}: {error}"
    original = getattr(error, "original_traceback", None)
    text = "".join(original) if original else str(error)
    # gunpowder wraps the exception of a node in one BatchRequestError per node downstream;
    # the original exception's "Type: message" is the last line, its node the last "in X".
    lines = [line for line in text.splitlines() if line.strip()]
    nodes = re.findall(r"Exception in (\S+) while processing", text)
    where = f" (in node {nodes[-1]})" if nodes else ""
    last = lines[-1].strip() if lines else type(error).__name__
    # a traceback names other modules' exceptions by their full path: keep the class name
    return re.sub(r"^(?:\w+\.)+(\w+): ", r"\1: ", last) + where
