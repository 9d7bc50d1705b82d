"""Moving a batch's step tensors to the training device, overlapped with the previous step.

:class:`~dacapo_trainers.BatchTrainer` starts the transfer of batch ``i + 1`` as soon as it has
it, while the device still computes step ``i``, and takes the tensors when step ``i + 1``
begins. Three calls, in this order for every batch::

    flight = transfer.start(batch)    # issue the copies (asynchronous where the device allows)
    raw, target, weight = transfer.ready(flight)   # usable by the step, on the current stream
    transfer.release(flight)          # once the copies have read the host memory: Batch.release()

:class:`HostTransfer` (the CPU, and any device without streams) copies synchronously in
``start``, and not at all where a tensor already is on the device: on the CPU a batch reaches
the model as it is. :class:`CudaTransfer` copies on a side stream: the copy of batch ``i + 1``
runs beside the kernels of step ``i``; the step's stream waits for the copy's event, not for
the host; the batch goes back to its producer only after that event (its memory may be the
source of an asynchronous copy until then). Its CUDA calls are the one-line methods of
:class:`CudaOps`, which the CPU tests replace with a recording fake.
"""

from __future__ import annotations

import abc
import warnings
from typing import TYPE_CHECKING, Any

import attrs

from ._batch import Batch

if TYPE_CHECKING:
    import torch

StepTensors = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]


@attrs.define(eq=False)
class InFlight:
    """A batch whose step tensors are on their way to the device.

    :param batch: the batch (its host memory is held until :meth:`DeviceTransfer.release`).
    :param tensors: raw, target and weight on the device (possibly still being written).
    :param event: what marks the end of the copies (a CUDA event), None when nothing is queued.
    """

    batch: Batch
    tensors: StepTensors
    event: Any = None


class DeviceTransfer(abc.ABC):
    """Moves the step tensors of batches to one device (module docstring for the protocol)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    @abc.abstractmethod
    def start(self, batch: Batch) -> InFlight:
        """Issue the copies of ``batch``'s raw, target and weight to the device."""

    @abc.abstractmethod
    def ready(self, flight: InFlight) -> StepTensors:
        """raw, target and weight, safe to use in work queued from now on."""

    @abc.abstractmethod
    def release(self, flight: InFlight) -> None:
        """Give the batch back (:meth:`Batch.release`) once no copy reads its memory any more."""


class HostTransfer(DeviceTransfer):
    """Synchronous ``Tensor.to(device)``; no copy where a tensor already is on the device."""

    def start(self, batch: Batch) -> InFlight:
        device = self.device
        raw, target, weight = (t.to(device) for t in (batch.raw, batch.target, batch.weight))
        return InFlight(batch, (raw, target, weight))

    def ready(self, flight: InFlight) -> StepTensors:
        return flight.tensors

    def release(self, flight: InFlight) -> None:
        flight.batch.release()


class CudaOps:
    """The CUDA calls of :class:`CudaTransfer`, one line each (a fake replaces them in tests)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def new_stream(self) -> Any:
        import torch

        return torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]

    def current_stream(self) -> Any:
        import torch

        return torch.cuda.current_stream(self.device)

    def copy(self, tensor: torch.Tensor, stream: Any) -> torch.Tensor:
        """``tensor`` copied to the device, queued on ``stream`` without waiting for it."""
        import torch

        with torch.cuda.stream(stream):
            return tensor.to(self.device, non_blocking=True)

    def record_event(self, stream: Any) -> Any:
        import torch

        event = torch.cuda.Event()  # type: ignore[no-untyped-call]
        event.record(stream)
        return event

    def wait_event(self, stream: Any, event: Any) -> None:
        stream.wait_event(event)

    def record_stream(self, tensor: torch.Tensor, stream: Any) -> None:
        tensor.record_stream(stream)

    def synchronize(self, event: Any) -> None:
        event.synchronize()

    def is_pinned(self, tensor: torch.Tensor) -> bool:
        return bool(tensor.is_pinned())


class CudaTransfer(DeviceTransfer):
    """Copies on a side stream, overlapped with the step running on the current stream.

    Invariants: (1) the step's stream waits for the event recorded after a batch's copies
    before any work that reads them (:meth:`ready`); (2) a copied tensor is marked as used by
    the step's stream (``record_stream``), so that the caching allocator, which files it under
    the side stream, does not hand its memory to a later copy while the step still reads it;
    (3) the batch is released only after that event has completed on the host
    (:meth:`release`), because a copy from pinned memory reads the batch's memory
    asynchronously. Tensors already on the device are used as they are.

    Host memory that is not page-locked is copied straight too (CUDA stages pageable memory
    itself, in this thread, before the copy call returns), without any host copy of ours; a
    warning says once that pinned batches (:attr:`Batch.pinned`) would copy asynchronously.
    """

    def __init__(self, device: torch.device, ops: CudaOps | None = None) -> None:
        super().__init__(device)
        self.ops = ops if ops is not None else CudaOps(device)
        self.stream = self.ops.new_stream()
        self._warned_pageable = False

    def start(self, batch: Batch) -> InFlight:
        ops, stream = self.ops, self.stream
        tensors = []
        for tensor in (batch.raw, batch.target, batch.weight):
            if tensor.device.type == "cuda":
                tensors.append(tensor)
                continue
            if not batch.pinned and not self._warned_pageable and not ops.is_pinned(tensor):
                self._warn_pageable()
            tensors.append(ops.copy(tensor, stream))
        raw, target, weight = tensors
        return InFlight(batch, (raw, target, weight), ops.record_event(stream))

    def ready(self, flight: InFlight) -> StepTensors:
        ops = self.ops
        current = ops.current_stream()
        ops.wait_event(current, flight.event)
        host = (flight.batch.raw, flight.batch.target, flight.batch.weight)
        for copied, original in zip(flight.tensors, host, strict=True):
            if copied is not original:
                ops.record_stream(copied, current)
        return flight.tensors

    def release(self, flight: InFlight) -> None:
        self.ops.synchronize(flight.event)
        flight.batch.release()

    def _warn_pageable(self) -> None:
        self._warned_pageable = True
        warnings.warn(
            "BatchTrainer: a batch holds tensors in pageable host memory; they are copied to "
            f"{self.device} synchronously. Put them in page-locked memory (e.g. "
            "dacapo_trainers.pin_host_memory on the buffer they live in, or "
            "Tensor.pin_memory()) and set Batch.pinned for asynchronous copies",
            stacklevel=3,
        )


def device_transfer(device: torch.device) -> DeviceTransfer:
    """The transfer for ``device``: :class:`CudaTransfer` on CUDA, else :class:`HostTransfer`."""
    if device.type == "cuda":
        return CudaTransfer(device)
    return HostTransfer(device)
