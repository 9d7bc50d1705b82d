"""Checkpoints: atomic, checksummed, loaded with ``torch.load(weights_only=True)``.

A checkpoint holds everything an exact resume needs: model, optimizer, the trainer's own state
(learning-rate scheduler, data generators), the completed iteration count and the global random
states of Python, numpy and torch.

On disk, ``checkpoints/iteration_00001200.pt`` is written to a temporary file, flushed, hashed,
and moved into place with ``os.replace`` after its SHA-256 has been written beside it, in
``iteration_00001200.pt.sha256`` (the format of ``sha256sum``, so ``sha256sum -c`` checks it).
So a checkpoint file is always complete, and one damaged later (a disk, a copy, a hand) is
noticed before it is used: :func:`load_latest` skips it, sets it aside as ``*.damaged`` (never
deleting it) and resumes from the newest intact one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import attrs

from .._errors import CheckpointError, DacapoTrainersWarning, first_line
from ._atomic import atomic_writer, sync_folder, write_text

_NAME = re.compile(r"^iteration_(\d+)\.pt$")
#: Suffix of the file holding a checkpoint's SHA-256 (beside the checkpoint).
CHECKSUM_SUFFIX = ".sha256"
#: Suffix of a checkpoint set aside because it is damaged.
DAMAGED_SUFFIX = ".damaged"
#: The keys every checkpoint holds.
KEYS = ("iteration", "model", "optimizer", "trainer", "random")
_CHUNK = 1 << 20


def checkpoint_path(folder: Path, iteration: int) -> Path:
    """Where the checkpoint of ``iteration`` completed iterations lives."""
    return folder / f"iteration_{iteration:08d}.pt"


def checksum_path(path: Path) -> Path:
    """The file holding the SHA-256 of the checkpoint ``path``."""
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def checkpoints(folder: Path) -> list[Path]:
    """The checkpoints in ``folder``, oldest (fewest iterations) first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [path for _, path in sorted(found)]


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint with the most completed iterations in ``folder``, if any."""
    found = checkpoints(folder)
    return found[-1] if found else None


def iteration_of(path: Path) -> int:
    """The completed iterations a checkpoint's name records."""
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path.name!r} is not a checkpoint name")
    return int(match.group(1))


def random_states() -> dict[str, Any]:
    """The global random states of Python, numpy and torch (CPU and CUDA), weights-only safe."""
    import numpy as np
    import torch

    kind, keys, position, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    """Restore what :func:`random_states` returned."""
    import numpy as np
    import torch

    random.setstate(_as_tuples(states["python"]))
    saved = states["numpy"]
    np.random.set_state(
        (
            saved["kind"],
            saved["keys"].numpy().astype(np.uint32),
            saved["position"],
            saved["has_gauss"],
            saved["cached"],
        )
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically, its SHA-256 beside it (module docstring)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, "wb") as file:
        torch.save(state, file)
        file.flush()
        digest = _sha256_of_descriptor(file.fileno())  # what reached the file, not what torch meant
        # The checksum goes first: a checkpoint in place always has its checksum (a checksum
        # without its checkpoint, from a write killed in between, is ignored).
        write_text(checksum_path(path), f"{digest}  {path.name}\n")
    return path


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256_of_descriptor(descriptor: int) -> str:
    digest = hashlib.sha256()
    position = 0
    while chunk := os.pread(descriptor, _CHUNK, position):
        digest.update(chunk)
        position += len(chunk)
    return digest.hexdigest()


@attrs.define(frozen=True)
class Restored:
    """The checkpoint a run resumes from, and the damaged newer ones set aside on the way."""

    path: Path
    state: dict[str, Any]
    set_aside: tuple[tuple[Path, str], ...] = ()


def load_latest(folder: Path, *, set_aside: bool = True) -> Restored | None:
    """The newest intact checkpoint in ``folder``, or None when there is none at all.

    Newer checkpoints that are damaged (checksum mismatch, unreadable, incomplete) are
    reported with a :class:`DacapoTrainersWarning` and, with ``set_aside`` (the process that
    writes the run's outputs), moved aside to ``<name>.damaged``; other processes of the run
    only skip them.

    :raises CheckpointError: every checkpoint is damaged, or an intact one is refused by
        ``torch.load(weights_only=True)`` (it holds objects other than plain data).
    """
    damaged: list[tuple[Path, str]] = []
    for path in reversed(checkpoints(folder)):
        problem, state = _read(path)
        if problem is None:
            assert state is not None
            moved = []
            for original, reason in damaged:
                if not set_aside:
                    continue
                target = _set_aside(original)
                moved.append((target, reason))
                warnings.warn(
                    f"checkpoint {original} is damaged ({reason}); it was moved aside to "
                    f"{target.name} (not deleted) and the run resumes from {path.name}",
                    DacapoTrainersWarning,
                    stacklevel=2,
                )
            return Restored(path, state, tuple(moved))
        damaged.append((path, problem))
    if not damaged:
        return None
    listed = "; ".join(f"{path.name}: {reason}" for path, reason in damaged)
    raise CheckpointError(
        f"no checkpoint in {folder} is intact ({listed}). Restore them from a copy, or move "
        "them out of that folder to start the run over (nothing was deleted)"
    )


def _read(path: Path) -> tuple[str | None, dict[str, Any] | None]:
    """``(problem, None)`` for a damaged checkpoint, ``(None, state)`` for an intact one."""
    import torch

    verified = False
    checksum = checksum_path(path)
    if checksum.exists():  # checkpoints of earlier versions have none: they are only loaded
        try:
            expected = checksum.read_text(encoding="ascii").split()[0].lower()
        except (OSError, UnicodeDecodeError, IndexError):
            return f"its checksum file {checksum.name} is unreadable", None
        try:
            actual = sha256_of(path)
        except OSError as error:
            return f"it cannot be read: {error.strerror or error}", None
        if actual != expected:
            return f"its SHA-256 does not match {checksum.name}", None
        verified = True
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _refused_global(error)
        if refused is not None or verified:
            raise CheckpointError(_refusal(path, refused)) from None
        return "it is not a readable checkpoint", None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as error:
        if verified:  # intact bytes this torch cannot read: falling back would lose the run
            raise CheckpointError(
                f"checkpoint {path} is intact (its SHA-256 matches) but torch cannot read it "
                f"({type(error).__name__}: {first_line(error, empty='no message')}); was it "
                "written by another torch version? Resume with the torch that wrote it"
            ) from None
        reason = first_line(error, empty="no message")
        return f"it cannot be read ({type(error).__name__}: {reason})", None
    if not isinstance(state, dict) or any(key not in state for key in KEYS):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        return f"it lacks what a checkpoint holds (found {found})", None
    return None, state


def _refused_global(error: BaseException) -> str | None:
    """The class torch's safe loader refused ("GLOBAL module.Name"), if that was the error."""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
    return match.group(1) if match else None


def _refusal(path: Path, refused: str | None) -> str:
    what = f"an object of class {refused}" if refused else "objects other than plain data"
    return (
        f"checkpoint {path} holds {what}, which the safe loader refuses: checkpoints are loaded "
        "with torch.load(weights_only=True), so that loading one runs no code. The trainer's "
        "state_dict() must hold only tensors, numbers, strings, lists, tuples and dicts (a bug "
        "in the trainer's plugin); after fixing it, move this checkpoint out of the folder to "
        "resume from an earlier one"
    )


def _set_aside(path: Path) -> Path:
    """Move a damaged checkpoint (and its checksum) to a free ``<name>.damaged[.N]`` name."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    number = 0
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}.{number}")
    os.replace(path, target)
    checksum = checksum_path(path)
    if checksum.exists():
        os.replace(checksum, target.with_name(target.name + CHECKSUM_SUFFIX))
    sync_folder(path.parent)
    return target


def remove_orphan_checksums(folder: Path) -> list[Path]:
    """Delete checksum files whose checkpoint was never moved into place (a killed write)."""
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        checkpoint = path.name.removesuffix(CHECKSUM_SUFFIX)
        if (
            checkpoint != path.name
            and _NAME.match(checkpoint)
            and not path.with_name(checkpoint).exists()
        ):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read one checkpoint, checking its checksum (``torch.load(weights_only=True)``).

    :raises CheckpointError: it is damaged or refused.
    """
    problem, state = _read(path)
    if problem is not None:
        raise CheckpointError(f"checkpoint {path} is damaged: {problem}")
    assert state is not None
    return state
