"""Reads of zarr arrays that say what failed: the dataset, the array, the chunk and its voxels.

A chunk that a codec cannot decode (corrupt, truncated) makes zarr raise the codec's own
error ("error during blosc decompression: -1"), which names neither the array nor the chunk.
:class:`CheckedReads` wraps the zarr array of every :class:`ZarrArray` the core opens; a read
that fails becomes a :class:`~dacapo_trainers.ChunkReadError` naming the first chunk of the
request that cannot be read. The driver labels each array with its dataset and role
(:func:`label_reads`) before a trainer forks workers, so their errors name them too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .._errors import ChunkReadError, DacapoTrainersError
from ._remote import RemoteAccessError

Box = tuple[slice, ...]


class CheckedReads:
    """A zarr array (or remote data) whose failed reads raise :class:`ChunkReadError`.

    Everything but indexing is the wrapped array's (``shape``, ``dtype``, ``chunks``,
    ``attrs``, ``store``...). ``label`` (``"dataset 'cells', its raw array"``) heads the
    message; ``location`` is where the array lies.
    """

    def __init__(self, array: Any, location: str, label: str | None = None) -> None:
        self._array = array
        self.location = location
        self.label = label

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # unpickling looks for these before _array exists
            raise AttributeError(name)
        return getattr(self._array, name)

    def __len__(self) -> int:
        return int(self._array.shape[0])  # zarr 3's arrays have no len()

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._array[key]
        except (IndexError, TypeError, MemoryError, DacapoTrainersError, RemoteAccessError):
            raise  # the caller's key, too large a request, or an error that says what failed
        except Exception as error:  # a codec's or store's complaint about the data
            raise ChunkReadError(self._message(key, error)) from error

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        import numpy as np

        return np.asarray(self[...], dtype=dtype)

    def _message(self, key: Any, error: Exception) -> str:
        box = _box(key, tuple(int(s) for s in self._array.shape))
        chunks = _chunk_shape(self._array)
        found = None
        if box is not None and chunks is not None:
            found = first_unreadable(self._array, chunk_indices(box, chunks), chunks)
        where = self.location if self.label is None else f"{self.label} ({self.location})"
        if found is None:  # the request failed, but no single chunk of it does alone
            return (
                f"{where} cannot be read: {describe_error(error)}. Check the container "
                "(restore it from a copy if it is damaged)"
            )
        index, chunk_box, chunk_error = found
        return f"{where} has {describe_chunk(index, chunk_box, chunk_error)}"


def label_reads(data: Any, label: str) -> None:
    """Give ``label`` to the :class:`CheckedReads` under ``data`` (through lazily mapped
    arrays' ``source``); nothing where there is none."""
    for _ in range(16):  # mapped arrays nest a few levels at most
        if isinstance(data, CheckedReads):
            data.label = label
            return
        data = getattr(data, "source", None)
        if data is None:
            return


def label_dataset_reads(dataset: Any, kind: str = "dataset") -> None:
    """Label the reads of ``dataset``'s raw, gt and mask arrays: ``"{kind} 'cells', its raw
    array"`` (``kind``: ``"dataset"``, ``"validation dataset"``)."""
    for role in ("raw", "gt", "mask"):
        array = getattr(dataset, role, None)
        if array is not None:
            label_reads(array.data, f"{kind} {getattr(dataset, 'name', '?')!r}, its {role} array")


def chunk_indices(box: Box, chunks: Sequence[int]) -> Iterable[tuple[int, ...]]:
    """The index of every chunk that ``box`` touches, in order."""
    ranges = [
        range(b.start // c, max(b.start // c, -(-b.stop // c)))
        for b, c in zip(box, chunks, strict=True)
    ]
    return itertools.product(*ranges)


def first_unreadable(
    array: Any, indices: Iterable[tuple[int, ...]], chunks: Sequence[int]
) -> tuple[tuple[int, ...], Box, Exception] | None:
    """The first of the chunks at ``indices`` that cannot be read: (index, voxels, error)."""
    import numpy as np

    shape = tuple(int(s) for s in array.shape)
    for index in indices:
        box = tuple(
            slice(i * c, min((i + 1) * c, size))
            for i, c, size in zip(index, chunks, shape, strict=True)
        )
        try:
            np.asarray(array[box])
        except Exception as error:  # any codec's or store's complaint: the chunk is damaged
            return index, box, error
    return None


def describe_chunk(index: Sequence[int], box: Box, error: BaseException) -> str:
    """``"a chunk that cannot be read: chunk 0.1.0 (voxels ...): Error: .... Restore..."``."""
    return (
        f"a chunk that cannot be read: chunk {'.'.join(str(i) for i in index)} (voxels "
        f"{', '.join(f'{b.start}:{b.stop}' for b in box)}): {describe_error(error)}. Restore "
        "the container from a copy, or write that chunk again"
    )


def describe_error(error: BaseException) -> str:
    """``"Type: message"`` on one line, at most 200 characters of message."""
    cause: BaseException = error
    while isinstance(cause, ChunkReadError) and cause.__cause__ is not None:
        cause = cause.__cause__
    return f"{type(cause).__name__}: {' '.join(str(cause).split())[:200] or 'no message'}"


def _chunk_shape(array: Any) -> tuple[int, ...] | None:
    chunks = getattr(array, "chunks", None)
    shape = getattr(array, "shape", ())
    if not isinstance(chunks, tuple) or len(chunks) != len(shape) or not shape:
        return None
    return tuple(max(1, int(c)) for c in chunks)


def _box(key: Any, shape: tuple[int, ...]) -> Box | None:
    """``key`` as one step-1 slice per axis, or None for other indexing (arrays, steps)."""
    key = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in key) > 1:
        return None
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:at] + (slice(None),) * (len(shape) - len(key) + 1) + key[at + 1 :]
    key = key + (slice(None),) * (len(shape) - len(key))
    if len(key) != len(shape):
        return None
    box = []
    for k, size in zip(key, shape, strict=True):
        if isinstance(k, slice):
            start, stop, step = k.indices(size)
            if step != 1:
                return None
            box.append(slice(start, max(start, stop)))
        elif isinstance(k, int) and -size <= k < size:
            box.append(slice(k % size, k % size + 1))
        else:
            return None
    return tuple(box) if math.prod(b.stop - b.start for b in box) else None
