"""Page-locking host buffers that batches live in, so that their copies to CUDA are asynchronous.

A producer that hands batches over in its own buffer (a shared-memory mapping its worker
processes write into) registers that buffer once with ``cudaHostRegister``; the batches cut
from it then say :attr:`~dacapo_trainers.Batch.pinned`, and the trainer copies them to the GPU
straight from there, with no host copy. :meth:`PinnedMemory.close` unregisters it, which must
happen before the buffer is unmapped.

Register a buffer *after* forking the processes that write into it: CUDA may exclude
page-locked ranges from fork (``MADV_DONTFORK``), and a child forked later would not see them.
"""

from __future__ import annotations

import ctypes
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: ``cudaHostRegisterPortable``: pinned for every CUDA context, not only the current device's.
HOST_REGISTER_PORTABLE = 1


class PinnedMemory:
    """A host buffer registered with ``cudaHostRegister`` until :meth:`close`.

    Holds a view of the buffer, so the buffer cannot be closed or unmapped while registered
    (``mmap.close()`` raises :class:`BufferError`). :meth:`close` runs at most once, also on
    garbage collection, but never at interpreter exit, when CUDA may already be torn down.

    :param buffer: a writable, contiguous object with the buffer protocol (``mmap.mmap``,
        ``bytearray``, a numpy array).
    :param cudart: the CUDA runtime module (``torch.cuda.cudart()``; a fake in tests).
    """

    def __init__(self, buffer: Any, cudart: Any) -> None:
        with memoryview(buffer) as described:
            nbytes = described.nbytes
        view = (ctypes.c_char * nbytes).from_buffer(buffer)
        self.address = ctypes.addressof(view)
        self.nbytes = nbytes
        _check(
            cudart.cudaHostRegister(self.address, self.nbytes, HOST_REGISTER_PORTABLE),
            f"cudaHostRegister of {self.nbytes} bytes",
        )
        self._finalizer = weakref.finalize(self, _unregister, cudart, self.address, view)
        self._finalizer.atexit = False

    @property
    def registered(self) -> bool:
        """Whether the buffer is still registered."""
        return self._finalizer.alive

    def close(self) -> None:
        """Unregister the buffer (once; later calls do nothing)."""
        self._finalizer()


def _unregister(cudart: Any, address: int, view: Any) -> None:
    # ``view`` is an argument only so that the finalizer keeps the buffer exported (so mapped)
    # until the range is unregistered.
    _check(cudart.cudaHostUnregister(address), "cudaHostUnregister")


def _check(result: Any, what: str) -> None:
    code = int(result)
    if code != 0:
        raise RuntimeError(
            f"{what} failed with CUDA error {code}: check the limit of locked memory "
            "(ulimit -l) and the free host memory; batches from an unregistered buffer are "
            "copied from pageable memory (correct, but not asynchronously)"
        )


def pin_host_memory(buffer: Any, device: torch.device | str | None) -> PinnedMemory | None:
    """Register ``buffer`` as page-locked for CUDA when ``device`` is a CUDA device.

    Returns the :class:`PinnedMemory` to :meth:`~PinnedMemory.close` before the buffer goes
    away, or None (nothing done) for any other device or an empty buffer. Costs about as much
    as touching every page of the buffer once; do it once per buffer, not per batch.
    """
    import torch

    if device is None or torch.device(device).type != "cuda":
        return None
    with memoryview(buffer) as described:
        if described.nbytes == 0:
            return None
    return PinnedMemory(buffer, torch.cuda.cudart())  # type: ignore[no-untyped-call]
