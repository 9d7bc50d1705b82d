"""A run's output folder: its lock, the copy of the run config, and the clean-up of temporaries.

One training at a time per folder. The process that trains (or launches the workers that
train) holds an exclusive ``flock`` on ``<output>/.lock`` for the whole run; the file records
its pid, host and start time. The kernel releases the lock when that process ends in any way
(also SIGKILL), so a lock left by a crash is taken over at the next start without asking. A
second ``train`` on a held folder fails at once with :class:`OutputLockedError`, naming the
holder. Worker processes of a launcher holding the lock do not lock again (they would wait on
their own parent): the launcher names itself and the folder in :data:`HOLDER_VARIABLE`, which
the workers inherit.

Locks work on local file systems and on NFS with lock support; where the file system refuses
locks, a warning says the folder is not protected and the run goes on.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
import stat
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._errors import (
    ConfigError,
    ConfigIssue,
    DacapoTrainersWarning,
    OutputFolderError,
    OutputLockedError,
    first_line,
)
from ._atomic import NO_FOLLOW, planted_links, remove_temporaries, write_text
from ._checkpoints import latest_checkpoint, remove_orphan_checksums
from ._run_identity import checkpoint_identity, describe_differences, differences

LOCK_FILE = ".lock"
RUN_CONFIG_COPY = "run_config.json"
CHECKPOINTS = "checkpoints"
#: The snapshot previews (``snapshots/ITERATION.png``).
PREVIEWS = "snapshots"
#: ``<pid>:<folder>``: set while a process holds a folder's lock, for the processes it starts.
HOLDER_VARIABLE = "DACAPO_TRAINERS_OUTPUT_HOLDER"
# Keys a resumed run may change (train longer, checkpoint more often).
#: Keys a resumed run may change: train longer, checkpoint or validate more often, another
#: device, log elsewhere (start_config applies to a fresh start only).
RESUMABLE_CHANGES = frozenset(
    {
        "num_iterations",
        "checkpoint_interval",
        "device",
        "output",
        "validation_interval",
        "start_config",
        "tensorboard",
    }
)
_NOT_SUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class OutputFolder:
    """The output folder of one run (``path`` is absolute)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path / LOCK_FILE
        self.run_copy = path / RUN_CONFIG_COPY
        self.checkpoints = path / CHECKPOINTS

    # -- the lock --------------------------------------------------------------------------------

    def held_by_parent(self) -> bool:
        """Whether this process's parent holds this folder's lock for it (a launched worker)."""
        pid, _, folder = os.environ.get(HOLDER_VARIABLE, "").partition(":")
        return pid.isdigit() and int(pid) == os.getppid() and folder == str(self.path)

    @contextmanager
    def claim(self) -> Iterator[None]:
        """Create the folder and hold its lock for the block; processes started meanwhile
        (a launcher's workers) inherit the right to write through :data:`HOLDER_VARIABLE`.

        :raises OutputLockedError: another process holds it.
        :raises OutputFolderError: the folder cannot be created or written.
        """
        self.create()
        descriptor = self._lock()
        previous = os.environ.get(HOLDER_VARIABLE)
        os.environ[HOLDER_VARIABLE] = f"{os.getpid()}:{self.path}"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(HOLDER_VARIABLE, None)
            else:
                os.environ[HOLDER_VARIABLE] = previous
            if descriptor is not None:
                # Unlink while still holding it: a process that opened the old file finds it
                # unlinked once it gets the lock, and starts over (see _lock).
                self.lock_path.unlink(missing_ok=True)
                os.close(descriptor)

    def create(self) -> None:
        """Create the folder (and its parents)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise self._unusable("it exists and is not a folder") from None
        except OSError as error:
            raise self._unusable(f"it cannot be created ({_reason(error)})") from None
        if not self.path.is_dir():
            raise self._unusable("it exists and is not a folder")

    def _lock(self) -> int | None:
        try:
            import fcntl
        except ImportError:  # not a POSIX system
            self._unprotected("this system has no flock")
            return None
        while True:
            try:
                # O_NOFOLLOW: a link planted at .lock must not make the lock write its target.
                descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | NO_FOLLOW, 0o644)
            except OSError as error:
                if self.lock_path.is_symlink():
                    raise self._planted([self.lock_path]) from None
                reason = f"its lock file cannot be created ({_reason(error)})"
                raise self._unusable(reason) from None
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # a FIFO or device planted there
                os.close(descriptor)
                raise self._unusable(f"its lock file {self.lock_path} is not a regular file")
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(descriptor)
                os.close(descriptor)
                raise OutputLockedError(self._locked_message(holder), holder) from None
            except OSError as error:
                os.close(descriptor)
                if error.errno not in _NOT_SUPPORTED:
                    raise self._unusable(f"it cannot be locked ({_reason(error)})") from None
                self._unprotected(f"its file system refuses file locks: {_reason(error)}")
                return None
            if _same_file(descriptor, self.lock_path):
                break
            os.close(descriptor)  # the holder removed it between our open and our lock
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)
        return descriptor

    def _unprotected(self, reason: str) -> None:
        warnings.warn(
            f"the output folder {self.path} cannot be locked ({reason}): nothing stops a "
            "second training from writing to it at the same time",
            DacapoTrainersWarning,
            stacklevel=4,
        )

    def _locked_message(self, holder: Mapping[str, Any]) -> str:
        pid, host = holder.get("pid"), holder.get("host")
        if pid is None:
            who = "another process (its lock file records no pid)"
        else:
            who = f"pid {pid} on host {host}"
            if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
                who += (
                    f" (which has ended; processes it started still hold the lock, e.g. data "
                    f"workers about to exit: `fuser -v {self.lock_path}` lists them)"
                )
        started = f", running since {holder['started']}" if holder.get("started") else ""
        return (
            f"the output folder {self.path} is in use by another training: {who}{started}. "
            "Two trainings in one folder would overwrite each other's checkpoints and stats; "
            "wait for it to end (or stop it), or give this run another output or name"
        )

    def refuse_planted_links(self) -> None:
        """Refuse a folder holding symbolic links (the tool never makes one).

        Call it while holding the lock, before writing: a link at a name the run writes
        (``stats.jsonl``, a checkpoint, a chunk of ``snapshots.zarr``) could make the run
        change a file outside the folder.

        :raises OutputFolderError: naming the links and their targets.
        """
        links = planted_links(self.path)
        if links:
            raise self._planted(links)

    def _planted(self, links: list[Path]) -> OutputFolderError:
        shown = "; ".join(f"{link} -> {_target(link)}" for link in links[:5])
        more = f" and {len(links) - 5} more" if len(links) > 5 else ""
        return OutputFolderError(
            f"the output folder {self.path} ($.output) holds symbolic links, which this tool "
            f"never creates: {shown}{more}. Training would write through them to files outside "
            "the run, so nothing was written. Someone else put them there: check who can "
            "write to this folder, remove the links (the files they point to are untouched), "
            "then train again"
        )

    def _unusable(self, reason: str) -> OutputFolderError:
        return OutputFolderError(
            f"the output folder {self.path} ($.output) cannot be used: {reason}. Choose "
            "another output (or name), or fix the folder's permissions"
        )

    # -- the run config copy -----------------------------------------------------------------

    def check_same_run(
        self,
        current: Mapping[str, Any],
        source: str | None = None,
        canonical: Callable[[Any], Any] | None = None,
    ) -> None:
        """Refuse a config that differs from the folder's run in more than resumable keys.

        Only a folder holding a checkpoint holds a run to resume; a folder without one (a
        run that failed before its first checkpoint) takes any config. The run is compared
        with ``run_config.json`` and with the config the newest checkpoint records (so that
        deleting or replacing ``run_config.json`` does not let two runs mix); the message names
        each field that differs. ``canonical`` brings
        the stored data to the form this version writes (fields added since, with their
        defaults), so that upgrading does not make a run look changed.

        :raises ConfigError: the folder's run differs.
        :raises OutputFolderError: the folder's ``run_config.json`` is damaged, or the folder
            holds symbolic links (:meth:`refuse_planted_links`).
        """
        if self.path.is_dir():  # the run's identity is not read through a planted link
            self.refuse_planted_links()
        latest = latest_checkpoint(self.checkpoints)
        if latest is None:
            return
        current = json.loads(json.dumps(current))  # compared as the files hold it
        recorded = []
        if self.run_copy.exists():
            recorded.append((RUN_CONFIG_COPY, self._read_run_copy()))
        identity = checkpoint_identity(latest)
        if identity is not None:  # checkpoints of earlier versions record none
            recorded.append((f"{CHECKPOINTS}/{latest.name}", identity))
        for where, previous in recorded:
            if canonical is not None:
                previous = canonical(previous)
            found = list(differences(previous, current, RESUMABLE_CHANGES))
            if found:
                shown = describe_differences(found, f"in {where}", "in this config")
                raise ConfigError(
                    [
                        ConfigIssue(
                            found[0][0],
                            f"the output folder {self.path} holds a run with a different "
                            f"{shown.replace('$.', '')}; resuming it with this config would "
                            "mix two runs. Use another output (or name), or delete that "
                            "folder to start over",
                        )
                    ],
                    source,
                )

    def _read_run_copy(self) -> Any:
        try:
            previous = json.loads(self.run_copy.read_text(encoding="utf-8"))
            if not isinstance(previous, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            raise OutputFolderError(
                f"{self.run_copy} is damaged ({first_line(error)}): it records which run the "
                f"folder's checkpoints belong to. Restore it from a copy; or, if you are sure "
                "the folder holds this run, delete it and train again (it is rewritten)"
            ) from None
        return previous

    def write_run_config(self, data: Any) -> None:
        """Write the normalized run config to ``run_config.json`` (atomically)."""
        write_text(self.run_copy, json.dumps(data, indent=2) + "\n")

    def remove_temporaries(self) -> list[Path]:
        """Delete what killed writers left (temporary files, orphan checksums).

        Call it only while holding the lock.
        """
        return [
            *remove_temporaries(self.path),
            *remove_temporaries(self.checkpoints),
            *remove_temporaries(self.path / PREVIEWS),
            *remove_orphan_checksums(self.checkpoints),
        ]


def _read_holder(descriptor: int) -> dict[str, Any]:
    try:
        record = json.loads(os.pread(descriptor, 4096, 0).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _target(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return "?"


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
