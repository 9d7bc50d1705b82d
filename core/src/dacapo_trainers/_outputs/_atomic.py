"""Atomic file writes with temporary names no two processes share, and their clean-up.

Every file of a run's output is written to a temporary file in the same folder and moved into
place with ``os.replace``, so a reader sees the old file or the new one, never a torn one. The
temporary name carries the writer's pid and a random token (``.stats.jsonl.4711.9f3a0c1e.tmp``):
two writers never share one, even where they should not be writing at all. A writer killed
mid-write leaves its temporary file behind; :func:`remove_temporaries` deletes those, and the
driver calls it only while it holds the output folder's lock, when no other writer can exist.

No write follows a symbolic link: a temporary file is created with ``O_EXCL | O_NOFOLLOW`` (a
link planted at its name is refused, never written through), and ``os.replace`` replaces a
link at the destination instead of writing to its target. :func:`planted_links` finds the
links in an output folder, which the driver refuses at the start: the tool never makes one.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

#: A temporary name made by :func:`temporary_path`.
_TEMPORARY = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")
#: The fixed temporary names of earlier versions (before the lock and unique names).
_EARLIER_TEMPORARY = re.compile(
    r"^(\.iteration_\d+\.pt\.\d+\.tmp|\.run_config\.json\.tmp|stats\.jsonl\.tmp|\.loss\.png\.tmp\.png)$"
)


def temporary_path(path: Path) -> Path:
    """A temporary name for ``path`` in its folder, unique to this process and this call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def is_temporary(name: str) -> bool:
    """Whether ``name`` is the name of a temporary file of an atomic write."""
    return bool(_TEMPORARY.match(name) or _EARLIER_TEMPORARY.match(name))


@contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file to write ``path``'s new content to; moved into place when the block succeeds.

    The data is flushed to disk (``fsync``) before the move and the folder after it, so that
    after a crash ``path`` holds either its old or its new content. On any error the
    temporary file is removed and ``path`` is untouched.
    """
    temporary = temporary_path(path)
    encoding = None if "b" in mode else "utf-8"
    descriptor = create_new(temporary)
    try:
        with open(descriptor, mode, encoding=encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        sync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


#: Flags that open a file without following a symbolic link at its name.
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def create_new(path: Path) -> int:
    """Create ``path`` for writing and reading back (mode 644); it must not exist (not even
    as a link).

    :raises FileExistsError: something is at ``path`` (a file, or a link planted there).
    """
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | NO_FOLLOW, 0o644)


def open_appending(path: Path) -> IO[str]:
    """``path`` opened to append text (created if missing), never through a symbolic link.

    :raises OSError: ``ELOOP`` where ``path`` is a link.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NO_FOLLOW, 0o644)
    return open(descriptor, "a", encoding="utf-8")


def planted_links(folder: Path) -> list[Path]:
    """The symbolic links inside ``folder`` (at any depth; links to folders are not entered).

    The tool never creates one, so each was put there by someone else; writing at such a
    path could change a file outside the run.
    """
    found = []
    for root, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            path = Path(root) / name
            if path.is_symlink():
                found.append(path)
    return sorted(found)


def write_text(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text`` (UTF-8), atomically."""
    with atomic_writer(path) as file:
        file.write(text)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems (and platforms) cannot sync a folder
        pass
    finally:
        os.close(descriptor)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that killed writers left in ``folder``; the deleted paths.

    Call it only while no other process can be writing to ``folder`` (the driver holds the
    output folder's lock).
    """
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if is_temporary(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
