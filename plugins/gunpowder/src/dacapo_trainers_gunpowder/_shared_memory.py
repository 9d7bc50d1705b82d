"""Batch slots in shared memory: the layout of one batch, the mapping that holds the slots of a
producer (page-locked on demand), and a batch on loan from it."""

from __future__ import annotations

import mmap
import warnings
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from dacapo_trainers import PinnedMemory, pin_host_memory


@attrs.define(frozen=True)
class BatchLayout:
    """Shapes and dtypes of the arrays of one batch (batch axis first)."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, np.dtype[Any]]

    def nbytes(self, name: str) -> int:
        return int(np.prod(self.shapes[name])) * self.dtypes[name].itemsize

    @property
    def total_nbytes(self) -> int:
        # each array starts on a 64-byte boundary
        return sum(-(-self.nbytes(name) // 64) * 64 for name in self.shapes)

    def views(self, buffer: Any, offset: int = 0) -> dict[str, np.ndarray]:
        """numpy views of the batch arrays in ``buffer`` starting at byte ``offset``."""
        views = {}
        for name, shape in self.shapes.items():
            dtype = self.dtypes[name]
            count = int(np.prod(shape))
            views[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(
                shape
            )
            offset += -(-self.nbytes(name) // 64) * 64
        return views

    def allocate(self) -> dict[str, np.ndarray]:
        return {name: np.empty(shape, self.dtypes[name]) for name, shape in self.shapes.items()}


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
