"""Batch production in worker processes, handing batches over through shared memory.

Worker ``w`` of ``n`` produces batches ``start + w``, ``start + w + n``, ... in order, each
straight into one of its own ``depth`` slots of an anonymous shared mapping (created before
the workers fork, so it needs no name and disappears with the last process using it). It then
sends ``(index, slot)`` through its own pipe. The training process takes batch ``i`` from
worker ``(i - start) % n``, wraps the slot's arrays without copying (``torch.from_numpy``),
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

Failure handling: a worker sends its exception (type, message, traceback) and exits; the
training process raises :class:`DataWorkerError` with them. A worker that dies without a
word (killed, segfault) is noticed through its process sentinel. Workers ignore SIGINT (the
training process decides when to stop), exit when their parent disappears, and are
terminated, then killed, by :meth:`WorkerPool.close`, which also runs on garbage collection
and at interpreter exit.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import traceback
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from dacapo_trainers import PinnedMemory, pin_host_memory

from ._errors import DataWorkerError
from ._pipeline import BatchLayout, PipelineSpec

#: How long (s) waiting processes sleep between checks that their peer is still alive.
POLL_INTERVAL = 0.5

#: Niceness added to data workers. The training step is the critical path and the workers have
#: slack (prefetched batches): when cores are contended, a worker should yield to the step's
#: threads, whose parallel regions otherwise stall while one of them is descheduled. When the
#: workers fall behind, the training process waits (sleeps) and they get the cores back.
WORKER_NICENESS = int(os.environ.get("DACAPO_TRAINERS_GUNPOWDER_WORKER_NICENESS", "10"))


@attrs.define(eq=False)
class LoanedBatch:
    """Batch ``index``: arrays valid until :meth:`release` (they may be shared memory).

    ``pinned``: the arrays lie in memory registered as page-locked for CUDA.
    """

    index: int
    arrays: dict[str, np.ndarray]
    _release: Callable[[], None]
    pinned: bool = False
    _released: bool = False

    def release(self) -> None:
        """Give the batch's memory back to its producer (once; later calls do nothing)."""
        if not self._released:
            self._released = True
            self._release()


class HostBuffer:
    """Anonymous shared memory holding a producer's batch slots, page-locked on demand.

    Created before the workers fork (they inherit it); :meth:`pin` registers it for CUDA in the
    training process, once; :meth:`close` unregisters it. A failed registration is said once
    (warning) and the batches stay correct, copied from pageable memory.
    """

    def __init__(self, nbytes: int) -> None:
        self.memory = mmap.mmap(-1, max(nbytes, 1))
        self._pinned: PinnedMemory | None = None
        self._pin_failed = False

    @property
    def pinned(self) -> bool:
        """Whether the memory is registered as page-locked now."""
        return self._pinned is not None and self._pinned.registered

    def pin(self, device: Any) -> bool:
        """Register the memory for CUDA when ``device`` is a CUDA device; whether it is pinned."""
        if self._pinned is None and not self._pin_failed:
            try:
                self._pinned = pin_host_memory(self.memory, device)
            except RuntimeError as error:
                self._pin_failed = True
                warnings.warn(
                    f"GunpowderTrainer: the batch slots stay in pageable memory: {error}",
                    stacklevel=2,
                )
        return self.pinned

    def close(self) -> None:
        """Unregister the memory (idempotent); the mapping itself goes with its last user."""
        pinned, self._pinned = self._pinned, None
        if pinned is not None:
            pinned.close()


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
        self._producer: Any = None
        self.buffer = HostBuffer(layout.total_nbytes)
        self._arrays = layout.views(self.buffer.memory)
        self._controller: Any = None

    def get(self, index: int) -> LoanedBatch:
        if self._producer is None:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
            self._producer = self.spec.build().__enter__()
        # numpy's BLAS threads would compete with (and spin beside) the pipeline's own work
        with self._controller.limit(limits=1, user_api="blas"):
            self._producer.fill(index, self._arrays)
        self.next_index = index + 1
        return LoanedBatch(index, self._arrays, lambda: None, pinned=self.buffer.pinned)

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.__exit__(None, None, None)
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
        context = multiprocessing.get_context("fork")
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
                process = context.Process(
                    target=_worker_main,
                    name=f"dacapo-gunpowder-data-{worker}",
                    args=(
                        worker,
                        num_workers,
                        start_index,
                        spec,
                        layout,
                        self.buffer.memory,
                        depth,
                        self._semaphores[worker],
                        writer,
                        parent_pid,
                    ),
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
        if message[0] == "error":
            _, failed_index, description, trace = message
            raise DataWorkerError(
                f"data worker {worker} failed producing batch {failed_index}: {description}\n"
                f"worker traceback:\n{trace}"
            )
        _, produced_index, slot = message
        if produced_index != index:  # pragma: no cover - a protocol bug
            raise RuntimeError(f"worker {worker} sent batch {produced_index}, expected {index}")
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


def _worker_main(
    worker: int,
    num_workers: int,
    start_index: int,
    spec: PipelineSpec,
    layout: BatchLayout,
    buffer: mmap.mmap,
    depth: int,
    semaphore: Any,
    connection: Any,
    parent_pid: int,
) -> None:
    # Ctrl-C reaches the whole process group; the training process decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if WORKER_NICENESS:
        os.nice(WORKER_NICENESS)
    if "torch" in sys.modules:
        # Forked after torch set up its thread pool: keep any torch use here single-threaded.
        import torch

        torch.set_num_threads(1)
    # A worker is one thread of work: BLAS/OpenMP pools (numpy's OpenBLAS has one thread per
    # core, spinning when idle) would only compete with it and with the training step.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    slot_bytes = layout.total_nbytes
    slots = [layout.views(buffer, (worker * depth + s) * slot_bytes) for s in range(depth)]
    index: int | None = None
    try:
        with spec.build() as producer:
            for j in itertools.count():
                index = start_index + worker + j * num_workers
                while not semaphore.acquire(timeout=POLL_INTERVAL):
                    if os.getppid() != parent_pid:
                        return
                producer.fill(index, slots[j % depth])
                connection.send(("batch", index, j % depth))
    except (BrokenPipeError, ConnectionResetError):
        return  # the training process is gone or closed us
    except BaseException as error:
        description = _describe(error)
        with contextlib.suppress(OSError):
            connection.send(("error", index, description, traceback.format_exc()))
        raise SystemExit(1) from None


def _describe(error: BaseException) -> str:
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
    return (lines[-1].strip() if lines else type(error).__name__) + where
