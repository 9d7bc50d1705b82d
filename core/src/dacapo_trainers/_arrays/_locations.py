"""Where a zarr container lies: a local folder, or a URL read through fsspec.

A container is named by a string: a local path, or a URL whose scheme fsspec knows (``s3://``,
``gs://``, ``http(s)://``). :class:`RemotePath` answers the few path questions that node
detection asks (``/``, ``parent``, ``name``, ``exists``, ``is_file``, ``is_dir``, ``iterdir``,
``read_text``) so that the same code reads local and remote containers. Nothing here imports
fsspec until a URL is opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import attrs

from ._remote import RemoteAccessError, described_failure, filesystem, is_unreachable

#: ``scheme://``: what makes a container string a URL.
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
#: ``scheme:/``: a URL that went through :class:`pathlib.Path`, which folds ``//`` into ``/``.
_FOLDED_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")


def url_scheme(container: str | os.PathLike[str]) -> str | None:
    """The scheme of ``container`` when it is a URL (``"s3"``, ``"https"``), else None.

    A URL folded by :class:`pathlib.Path` (``s3:/bucket/key``) counts as one too, so that a
    URL given where a path was expected is recognised (and refused there) rather than
    written to as a local folder named ``s3:``. One-letter schemes are drive letters.
    """
    text = str(container)
    match = _URL.match(text) or _FOLDED_URL.match(text)
    return match.group(1).lower() if match else None


def container_text(value: str | os.PathLike[str]) -> str:
    """A container as text, URLs kept whole (``str`` of a UPath keeps its ``//``)."""
    return value if isinstance(value, str) else str(value)


def local_path(container: str | os.PathLike[str]) -> Path | None:
    """``container`` as a local path (``file://`` URLs included), or None for a remote URL."""
    text = container_text(container)
    scheme = url_scheme(text)
    if scheme is None:
        return Path(text)
    if scheme == "file":
        return Path(text.split("://", 1)[1] if "://" in text else text[len("file:") :])
    return None


def refuse_remote_output(container: str | os.PathLike[str], what: str) -> None:
    """Raise ValueError when ``container`` is a URL: outputs are written to local disk only."""
    scheme = url_scheme(container)
    if scheme is not None and scheme != "file":
        raise ValueError(
            f"{what} {str(container)!r} is a {scheme}:// URL: remote containers are read-only "
            "(datasets may be read from object storage or HTTP, outputs are written to local "
            "disk); give a local path"
        )


@attrs.define(frozen=True, eq=False)
class RemotePath:
    """A key prefix in a remote store, with the subset of :class:`pathlib.Path` node detection
    uses. ``url`` is what the user wrote, extended by ``/name`` for each step down."""

    url: str
    fs: Any = attrs.field(repr=False)
    options: dict[str, Any] = attrs.field(factory=dict, repr=False)

    @classmethod
    def open(cls, url: str, storage_options: Mapping[str, Any] | None) -> RemotePath:
        """The container at ``url``, its file system made with ``storage_options``."""
        options = dict(storage_options or {})
        return cls(url.rstrip("/"), filesystem(url, options), options)

    def _at(self, url: str) -> RemotePath:
        return RemotePath(url, self.fs, self.options)

    def __truediv__(self, name: str) -> RemotePath:
        return self._at(f"{self.url}/{name.strip('/')}" if name else self.url)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        """The last part of the URL."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def parent(self) -> RemotePath:
        """The URL one level up (the container's root stays itself)."""
        head, _, _ = self.url.rpartition("/")
        return self if head.endswith(":/") or "/" not in head else self._at(head)

    def _ask(self, question: str, default: Any) -> Any:
        """``fs.<question>(url)``; ``default`` when the key is missing, else a one-line error."""
        try:
            return getattr(self.fs, question)(self.url)
        except FileNotFoundError:
            return default
        except Exception as error:  # network, credentials, permissions: say which, once
            raise RemoteAccessError(described_failure(self.url, error)) from None

    def check_root(self) -> None:
        """Raise a one-line RemoteAccessError when the server cannot be reached or the URL's
        bucket (s3, gs) does not exist; a missing container is left to node detection."""
        if self.exists():
            return
        scheme, _, rest = self.url.partition("://")
        if scheme.lower() in ("http", "https"):
            try:
                self.fs.info(self.url)
            except Exception as error:
                if is_unreachable(error):
                    raise RemoteAccessError(described_failure(self.url, error)) from None
            return
        if scheme.lower() not in ("s3", "s3a", "gs", "gcs"):
            return
        bucket = rest.split("/", 1)[0]
        if not RemotePath(f"{scheme}://{bucket}", self.fs).exists():
            raise RemoteAccessError(
                f"cannot read {self.url!r}: the bucket {bucket!r} does not exist (or these "
                "credentials cannot see it); check the URL and the endpoint"
            )

    def exists(self) -> bool:
        """Whether an object or a prefix is at this URL."""
        return bool(self._ask("exists", False))

    def is_file(self) -> bool:
        """Whether an object is at this URL."""
        return bool(self._ask("isfile", False))

    def is_dir(self) -> bool:
        """Whether objects lie under this URL."""
        return bool(self._ask("isdir", False))

    def iterdir(self) -> Iterator[RemotePath]:
        """What lies directly under this URL (empty where the store cannot list)."""
        try:
            entries = self.fs.ls(self.url, detail=False)
        except Exception:  # only used to list names in messages: a store may not list
            return iter(())
        names = sorted({str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries})
        return iter(self / name for name in names if name)

    def read_text(self, encoding: str = "utf-8") -> str:
        """The object's bytes decoded; FileNotFoundError when none is there."""
        try:
            data = self.fs.cat_file(self.url)
        except FileNotFoundError:
            raise
        except Exception as error:
            raise RemoteAccessError(described_failure(self.url, error)) from None
        return bytes(data).decode(encoding)


#: What node detection walks: a local folder or a remote key prefix.
Location: TypeAlias = Path | RemotePath
