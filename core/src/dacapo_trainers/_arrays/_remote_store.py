"""Read-only zarr stores over fsspec with an in-memory LRU cache of chunk bytes.

One store per container and process: arrays of a container share its cache, which outlives
batches (a crop's chunks are fetched once while they stay among the recently used). The cache
holds encoded chunk bytes, as stored (decompression is done per read, as from local disk), and
remembers missing chunks (fill value) too. Only a missing key means a missing chunk: every
other failure (network, credentials) is raised as a one-line :class:`RemoteAccessError`, never
read as zeros.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._remote import RemoteAccessError, described_failure

#: Bytes of chunk data each process keeps per container (``DACAPO_TRAINERS_REMOTE_CACHE_MB``).
CACHE_BYTES = int(float(os.environ.get("DACAPO_TRAINERS_REMOTE_CACHE_MB", "512")) * 2**20)

_MISSING = b""  # cached answer for a key that is not in the store (a chunk never written)


class ChunkCache:
    """Least recently used ``key -> bytes``, bounded by their total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Any, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        """The cached value (``_MISSING`` for a known missing key), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: bytes) -> None:
        """Remember ``value``; forget the least recently used beyond the bound."""
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes -= len(old) if old is not None else 0
            self._items[key] = value
            self._bytes += len(value)
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes


def _read_only(key: str) -> RemoteAccessError:
    return RemoteAccessError(f"cannot write {key!r}: remote containers are read-only")


def zarr2_store(fs: Any, root: str, cache: ChunkCache) -> Any:
    """A zarr 2 store of the container at URL ``root``, reading through ``fs`` and ``cache``."""
    from zarr.storage import BaseStore

    class FsspecReadStore(BaseStore):  # type: ignore[misc]
        _writeable = False
        _erasable = False

        def _url(self, key: str) -> str:
            return f"{root}/{key}"

        def getitems(
            self, keys: Sequence[str], *, contexts: Mapping[str, Any] | None = None
        ) -> dict[str, bytes]:
            found = {key: cache.get(key) for key in keys}
            wanted = [key for key, value in found.items() if value is None]
            if wanted:  # fetched together: fsspec's file systems read them concurrently
                urls = {fs._strip_protocol(self._url(k)): k for k in wanted}
                results = fs.cat(list(urls), on_error="return")
                for path, key in urls.items():
                    value = results.get(path, FileNotFoundError(path))
                    if isinstance(value, FileNotFoundError):
                        value = _MISSING
                    elif isinstance(value, BaseException):
                        raise RemoteAccessError(described_failure(self._url(key), value))
                    cache.put(key, bytes(value))
                    found[key] = bytes(value)
            return {k: v for k, v in found.items() if v is not None and v is not _MISSING}

        def __getitem__(self, key: str) -> bytes:
            value = self.getitems([key]).get(key)
            if value is None:
                raise KeyError(key)
            return value

        def __contains__(self, key: object) -> bool:
            return isinstance(key, str) and key in self.getitems([key])

        def __iter__(self) -> Iterator[str]:
            prefix = fs._strip_protocol(root).rstrip("/") + "/"
            return iter(str(p)[len(prefix) :] for p in fs.find(root) if str(p).startswith(prefix))

        def __len__(self) -> int:
            return sum(1 for _ in self)

        def __setitem__(self, key: str, value: Any) -> None:
            raise _read_only(key)

        def __delitem__(self, key: str) -> None:
            raise _read_only(key)

    return FsspecReadStore()


def zarr3_store(fs: Any, root: str, cache: ChunkCache) -> Any:
    """A zarr 3 store of the container at URL ``root`` (an asynchronous ``fs``), cached."""
    from zarr.storage import FsspecStore, WrapperStore

    class CachedStore(WrapperStore[FsspecStore]):  # type: ignore[misc]
        async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
            cache_key = (key, repr(byte_range))
            value = cache.get(cache_key)
            if value is None:
                try:
                    buffer = await self._store.get(key, prototype, byte_range)
                except Exception as error:  # only a missing key is a missing chunk
                    raise RemoteAccessError(described_failure(f"{root}/{key}", error)) from None
                value = _MISSING if buffer is None else buffer.to_bytes()
                cache.put(cache_key, value)
            if value is _MISSING:
                return None
            return prototype.buffer.from_bytes(value)

    path = fs._strip_protocol(root)
    return CachedStore(FsspecStore(fs, path=path, read_only=True))
