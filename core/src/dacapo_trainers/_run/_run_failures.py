"""The messages of a run that stopped early: where, why, what is kept, what to do."""

from __future__ import annotations

import errno
import signal
from pathlib import Path

from .._errors import RunInterrupted, chunk_read_error, flat_message, raised_in

# Errors that say the output folder's disk or permissions failed a write.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}
_ACCESS_ERRNOS = {errno.EACCES, errno.EPERM}


def is_write_failure(error: BaseException, output: Path) -> bool:
    """Whether ``error`` says the disk refused a write (full, too large, read-only), or
    that a file inside ``output`` (the folder itself or below, compared as paths) could
    not be written for lack of permission."""
    if not isinstance(error, OSError):
        return False
    if error.errno in _WRITE_ERRNOS:
        return True
    if error.errno not in _ACCESS_ERRNOS or error.filename is None:
        return False
    return _inside(Path(str(error.filename)), output)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.absolute().is_relative_to(folder.absolute())
    except (OSError, ValueError):
        return False


def failure_message(
    error: Exception,
    iteration: int,
    doing: str,
    output: Path,
    last_checkpoint: Path | None,
    trainer: str,
) -> str:
    """One paragraph: the iteration, what the run was ``doing``, the cause, what to do."""
    then = (
        f"every checkpoint written is intact, and the same command resumes from "
        f"{last_checkpoint.name}"
        if last_checkpoint
        else "then run the same command again (no checkpoint was written yet)"
    )
    if isinstance(error, OSError) and is_write_failure(error, output):
        target = f" ({error.filename})" if error.filename else ""
        return (
            f"the run stopped at iteration {iteration} while {doing}: cannot write to the "
            f"output folder {output}: {error.strerror}{target}. Free disk space (or raise the "
            f"file-size limit or quota, or choose another output); {then}"
        )
    chunk_error = chunk_read_error(error)  # the damaged chunk, not the wrappers around it
    error = chunk_error or error
    origin = chunk_error.__cause__ if chunk_error and chunk_error.__cause__ else error
    return (
        f"the run stopped at iteration {iteration} while {doing} ({trainer}): "
        f"{type(error).__name__}: {flat_message(error, limit=600)} "
        f"(raised in {raised_in(origin)}). Fix the cause (--debug shows the traceback); {then}"
    )


def interrupted(
    signal_number: int, iteration: int, last: Path | None, *, abandoned: bool
) -> RunInterrupted:
    """The error of a run a signal stopped: after a step with checkpoint ``last``, or
    (``abandoned``) during a step, resuming from ``last``."""
    name = signal.Signals(signal_number).name
    if not abandoned and last is not None:
        return RunInterrupted(
            f"stopped by {name} after iteration {iteration}; checkpoint {last} written, "
            "the same command resumes from it",
            signal_number,
            iteration,
            last,
        )
    resume = f"resumes from {last}" if last else "starts over (no checkpoint yet)"
    return RunInterrupted(
        f"stopped by {name} during iteration {iteration} (the step was abandoned); the "
        f"same command {resume}",
        signal_number,
        iteration,
        last,
    )


def non_finite_message(iteration: int, loss: float, last: Path | None) -> str:
    """The message of a loss that became NaN or infinite."""
    if last is not None:
        kept = f"the last good checkpoint is kept: {last}"
        then = "then re-run to resume from that checkpoint (or delete it to start over)"
    else:
        kept = "no checkpoint was written yet"
        then = "then run the same command again: it starts over"
    return (
        f"the loss became {loss} at iteration {iteration}; the run stopped and {kept}. "
        f"Lower the learning rate, check the data (raw values, labels) or the task's loss, {then}"
    )
