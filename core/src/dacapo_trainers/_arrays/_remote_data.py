"""Zarr arrays in remote containers, opened once per process: fork-safe lazy data.

A data worker forked from the training process must not use the parent's file system: its
event loop and connections live in a thread the child does not have. :class:`RemoteData`
therefore keeps only what names the array (container URL, path, storage options) and opens it
again, with its own store and chunk cache, in each process that reads it; the open arrays of
a process are forgotten in a forked child. It pickles to the same description (spawned
workers open their own too).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from ._remote import RemoteAccessError, described_failure, filesystem
from ._remote_store import CACHE_BYTES, ChunkCache, zarr2_store, zarr3_store

_stores: dict[tuple[str, str], Any] = {}
_arrays: dict[tuple[str, str, str], Any] = {}


def forget_remote_arrays() -> None:
    """Drop this process's open remote arrays, stores and chunk caches (done in forked
    children: the parent's connections and event loop are not theirs)."""
    _stores.clear()
    _arrays.clear()


os.register_at_fork(after_in_child=forget_remote_arrays)


def _zarr3() -> bool:
    import zarr

    return int(zarr.__version__.split(".")[0]) >= 3


def _options_key(options: Mapping[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=repr)


def container_store(url: str, options: Mapping[str, Any]) -> Any:
    """This process's cached zarr store of the container at ``url``."""
    key = (url, _options_key(options))
    store = _stores.get(key)
    if store is None:
        cache = ChunkCache(CACHE_BYTES)
        if _zarr3():
            fs = filesystem(url, {**options, "asynchronous": True})
            store = zarr3_store(fs, url, cache)
        else:
            store = zarr2_store(filesystem(url, options), url, cache)
        _stores[key] = store
    return store


def open_remote(url: str, path: str, options: Mapping[str, Any]) -> Any:
    """This process's zarr array ``path`` of the container at ``url`` (read-only)."""
    key = (url, path, _options_key(options))
    array = _arrays.get(key)
    if array is None:
        import zarr

        array = zarr.open_array(store=container_store(url, options), path=path, mode="r")
        _arrays[key] = array
    return array


@attrs.define(eq=False)
class RemoteData:
    """The data of a zarr array in a remote container, read lazily (``data[slices]``).

    Shape, dtype and chunks are known without reading; reading opens the array in the calling
    process (once) and fetches only the chunks a request touches, through the process's
    chunk cache.
    """

    url: str
    path: str
    storage_options: dict[str, Any]
    shape: tuple[int, ...]
    dtype: Any
    chunks: tuple[int, ...]

    @classmethod
    def open(cls, url: str, path: str, options: Mapping[str, Any]) -> RemoteData:
        """Open ``path`` in the container at ``url`` (reads its metadata)."""
        array = open_remote(url, path, options)
        return cls(
            url,
            path,
            dict(options),
            tuple(int(s) for s in array.shape),
            array.dtype,
            tuple(int(c) for c in array.chunks),
        )

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        size = 1
        for s in self.shape:
            size *= s
        return size

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> Any:
        array = open_remote(self.url, self.path, self.storage_options)
        try:
            return array[key]
        except (IndexError, TypeError, RemoteAccessError):
            raise
        except Exception as error:  # network or credentials failing mid-run
            raise RemoteAccessError(described_failure(f"{self.url}/{self.path}", error)) from None

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        import numpy as np

        return np.asarray(self[...], dtype=dtype)
