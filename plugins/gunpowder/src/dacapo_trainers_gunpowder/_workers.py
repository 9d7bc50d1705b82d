"""Batch production in worker processes, handing batches over through shared memory.

Worker ``w`` of ``n`` produces batches ``start + w``, ``start + w + n``, ... in order, each
straight into one of its own ``depth`` slots of an anonymous shared mapping (created before
the workers fork, so it needs no name and disappears with the last process using it). It then
sends a ``BatchReady`` message through its own pipe. The training process takes batch ``i``
from worker ``(i - start) % n``, wraps the slot's arrays without copying (``torch.from_numpy``),
and releases the slot after the step; a per-worker semaphore counts free slots. Because every
worker owns its slots and batches are consumed in order, a slow worker never starves the
others of slots.

Pinned memory: on a CUDA device the training process registers the whole mapping as
page-locked memory (:func:`dacapo_trainers.pin_host_memory`, ``cudaHostRegister``) on the
first batch it takes for that device, after the workers have forked (CUDA may keep
page-locked ranges out of a fork). The batches then say ``pinned``: the trainer copies them to
the GPU asynchronously straight from the slot, with no host copy, and releases the slot once
that copy has completed. :meth:`WorkerPool.close` unregisters the mapping after stopping the
workers.

Failure handling: a worker sends its exception (a ``WorkerFailed`` message: type, message,
traceback) and exits; the training process raises :class:`DataWorkerError` with them. A
worker that dies without a word (killed, segfault) is noticed through its process sentinel.
Workers ignore SIGINT (the training process decides when to stop), exit when their parent
disappears, and are terminated, then killed, by :meth:`WorkerPool.close`, which also runs on
garbage collection and at interpreter exit.

Start method: the workers are forked (they inherit the pipeline, the preloaded arrays and the
shared mapping without copying them), so worker processes need a platform with ``fork``
(Linux, macOS); elsewhere ``num_data_fetchers: 0`` produces batches in the training process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import weakref
from collections.abc import Sequence
from typing import Any

from ._errors import DataWorkerError
from ._pipeline import PipelineSpec, SampleProducer
from ._shared_memory import BatchLayout, HostBuffer, LoanedBatch
from ._worker_process import (
    POLL_INTERVAL,
    BatchReady,
    WorkerFailed,
    WorkerSpec,
    worker_main,
    worker_niceness,
)


def start_method_problem(available: Sequence[str]) -> str | None:
    """Why data worker processes cannot start where ``available`` are the start methods of
    :mod:`multiprocessing`, or None: they are forked."""
    if "fork" in available:
        return None
    return (
        "GunpowderTrainer's data workers are forked processes, and this platform cannot fork "
        f"(start methods: {', '.join(available)}); set num_data_fetchers: 0 in the trainer "
        "config to produce batches in the training process, or train on Linux or macOS"
    )


class InlineBatches:
    """Produces batches in the calling process (``num_data_fetchers == 0``; for debugging).

    gunpowder's own nodes (SimpleAugment, NoiseAugment, RandomProvider, MergeProvider)
    reseed the global ``random``/``numpy.random`` generators from each request, so in this
    mode they do so in the training process.
    """

    def __init__(self, spec: PipelineSpec, layout: BatchLayout, start_index: int) -> None:
        self.spec = spec
        self.layout = layout
        self.next_index = start_index
        self._producer: SampleProducer | None = None
        self._exit_stack = contextlib.ExitStack()
        self.buffer = HostBuffer(layout.total_nbytes)
        self._arrays = layout.views(self.buffer.memory)
        self._controller: Any = None

    def get(self, index: int) -> LoanedBatch:
        if self._producer is None:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
            self._producer = self._exit_stack.enter_context(self.spec.build())
        # numpy's BLAS threads would compete with (and spin beside) the pipeline's own work
        with self._controller.limit(limits=1, user_api="blas"):
            self._producer.fill(index, self._arrays)
        self.next_index = index + 1
        return LoanedBatch(index, self._arrays, lambda: None, pinned=self.buffer.pinned)

    def close(self) -> None:
        """Tear the pipeline down (idempotent)."""
        self._producer = None
        self._exit_stack.close()
        self.buffer.close()


class WorkerPool:
    """``num_workers`` processes producing batches from ``start_index`` on (module docstring)."""

    def __init__(
        self,
        spec: PipelineSpec,
        layout: BatchLayout,
        num_workers: int,
        depth: int,
        start_index: int,
    ) -> None:
        problem = start_method_problem(multiprocessing.get_all_start_methods())
        if problem is not None:
            raise RuntimeError(problem)
        context = multiprocessing.get_context("fork")
        niceness = worker_niceness()
        # Import gunpowder and the nodes once here, so that forked workers inherit them instead
        # of each importing them again.
        from . import nodes  # noqa: F401

        self.layout = layout
        self.num_workers = num_workers
        self.depth = depth
        self.start_index = start_index
        self.next_index = start_index
        self._slot_bytes = layout.total_nbytes
        self.buffer = HostBuffer(self._slot_bytes * num_workers * depth)
        self._semaphores = [context.Semaphore(depth) for _ in range(num_workers)]
        self._connections: list[Any] = []
        self._processes: list[Any] = []
        parent_pid = os.getpid()
        try:
            for worker in range(num_workers):
                reader, writer = context.Pipe(duplex=False)
                worker_spec = WorkerSpec(
                    worker=worker,
                    num_workers=num_workers,
                    start_index=start_index,
                    pipeline=spec,
                    layout=layout,
                    buffer=self.buffer.memory,
                    depth=depth,
                    free_slots=self._semaphores[worker],
                    connection=writer,
                    parent_pid=parent_pid,
                    niceness=niceness,
                )
                process = context.Process(
                    target=worker_main,
                    name=f"dacapo-gunpowder-data-{worker}",
                    args=(worker_spec,),
                    daemon=True,
                )
                process.start()
                writer.close()
                self._connections.append(reader)
                self._processes.append(process)
        finally:
            self._finalizer = weakref.finalize(
                self, _shutdown, list(self._processes), list(self._connections)
            )

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers."""
        return [process.pid for process in self._processes]

    def get(self, index: int) -> LoanedBatch:
        """Batch ``index`` (the next one in order), waiting for it if needed."""
        if index != self.next_index:
            raise ValueError(
                f"batches are produced in order: expected {self.next_index}, got {index}"
            )
        if not self._finalizer.alive:
            raise RuntimeError("the data workers were closed")
        worker = (index - self.start_index) % self.num_workers
        connection, process = self._connections[worker], self._processes[worker]
        while True:
            ready = multiprocessing.connection.wait(
                [connection, process.sentinel], timeout=POLL_INTERVAL
            )
            if connection in ready:
                try:
                    message = connection.recv()
                except EOFError:
                    message = None
                break
            if process.sentinel in ready:
                message = None
                break
        if message is None:
            process.join(timeout=POLL_INTERVAL)
            raise DataWorkerError(
                f"data worker {worker} (pid {process.pid}) exited with code {process.exitcode} "
                f"before producing batch {index}"
            )
        if isinstance(message, WorkerFailed):
            raise DataWorkerError(
                f"data worker {worker} failed producing batch {message.index}: "
                f"{message.description}",
                worker_traceback=message.trace,
            )
        if not isinstance(message, BatchReady) or message.index != index:
            raise RuntimeError(f"worker {worker} sent {message!r}, expected batch {index}")
        slot = message.slot
        offset = (worker * self.depth + slot) * self._slot_bytes
        arrays = self.layout.views(self.buffer.memory, offset)
        self.next_index = index + 1
        return LoanedBatch(
            index, arrays, self._semaphores[worker].release, pinned=self.buffer.pinned
        )

    def close(self) -> None:
        """Stop every worker (terminate, then kill), wait for them, unregister the slots'
        pinned memory. Idempotent."""
        self._finalizer()
        self.buffer.close()


def _shutdown(processes: list[Any], connections: list[Any]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
    for connection in connections:
        connection.close()
