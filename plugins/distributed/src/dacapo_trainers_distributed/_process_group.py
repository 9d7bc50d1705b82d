"""Joining the process group torchrun set up, and telling which rank failed a collective.

Every rank leaves small *progress marks* in the rendezvous store (a key per rank and stage:
"forward pass of iteration 7 done", "reached barrier 3"). When a collective fails, which
happens after ``timeout`` seconds where a rank hangs and at once where it died, the rank that
noticed reads the others' marks and names the ranks that never arrived.
"""

from __future__ import annotations

import atexit
import datetime
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed import PrefixStore  # type: ignore[attr-defined]
from torch.distributed.rendezvous import rendezvous

from ._errors import LaunchError, RankFailureError
from ._stderr_filter import filtered_stderr
from ._watchdog import SIGNAL_GRACE_S, LaunchWatchdog

#: Environment variables that show this process was started by torchrun (or a launcher that
#: sets the same variables, as ``srun`` scripts do).
_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# Messages of communication failures that torch raises as plain RuntimeErrors (gloo does).
_COMMUNICATION_WORDS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket")
_STORE_PREFIX = "dacapo_trainers_distributed"


def in_torchrun() -> bool:
    """Whether this process is a worker of torchrun (or of an equivalent launcher)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or all(v in os.environ for v in _TORCHRUN_VARIABLES)


def env_rank() -> int:
    """This process's global rank as the launcher set it (0 outside a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def generation() -> str:
    """A store namespace for this generation of workers ("" where the store is fresh).

    torchrun's agent shares its rendezvous store with the workers unless
    ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``; that store outlives a worker generation, and a
    restarted generation's gloo would read the dead generation's addresses from it ("Gloo
    connectFullMesh failed ... Connect timeout", seen with torch 2.13 and ``max_restarts``).
    Each generation then gets its own namespace, named by the restart count. With a fresh
    store per generation (the launcher's default) no namespace is needed, and none is used:
    the restart counts of nodes that joined at different times may differ.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != str(True):
        return ""
    return f"/restart{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"


def resolve_backend(backend: str) -> str:
    """``auto`` becomes ``nccl`` where CUDA is available and ``gloo`` elsewhere."""
    if backend != "auto":
        return backend
    return "nccl" if torch.cuda.is_available() else "gloo"


def is_communication_error(error: BaseException) -> bool:
    """Whether ``error`` looks like a failed collective rather than a bug in the step."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(word in text for word in _COMMUNICATION_WORDS)


class ProcessGroup:
    """This process's membership of the run: rank, world size, store and progress marks."""

    def __init__(
        self, rank: int, world_size: int, timeout: float, store: Any | None, owned: bool
    ) -> None:
        self.rank = rank
        self.world_size = world_size
        self.timeout = timeout
        self.owned = owned
        prefix = f"{_STORE_PREFIX}{generation()}"
        self._store = PrefixStore(prefix, store) if store is not None else None
        self._barriers = 0
        # After a failed collective, destroying the group could wait on the dead peer.
        self.broken = False

    # -- joining -----------------------------------------------------------------------------

    @classmethod
    def join(cls, backend: str, timeout: float) -> ProcessGroup:
        """Join the job torchrun described in the environment (``init_process_group``).

        The CUDA device is set to ``LOCAL_RANK`` first, so that the driver's ``auto`` or
        ``cuda`` device means this rank's own GPU. A process group that already exists (a user
        script that called ``init_process_group`` itself) is used as it is.
        """
        backend = resolve_backend(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        if dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), timeout, None, owned=False)
        delta = datetime.timedelta(seconds=timeout)
        try:
            # A SIGTERM ends this process within seconds even while torch's C++ code waits.
            with (
                filtered_stderr() as stderr_fd,
                LaunchWatchdog(
                    idle_limit_s=None, signal_grace_s=SIGNAL_GRACE_S, stderr_fd=stderr_fd
                ),
            ):
                # As init_process_group("env://"), but keeping the store for the marks.
                store, rank, world_size = next(rendezvous("env://", timeout=delta))
                store.set_timeout(delta)
                dist.init_process_group(
                    backend,
                    store=PrefixStore(f"default_pg{generation()}", store),
                    rank=rank,
                    world_size=world_size,
                    timeout=delta,
                )
        except (RuntimeError, ValueError, TimeoutError) as error:
            raise LaunchError(_join_failed(error, timeout)) from None
        group = cls(rank, world_size, timeout, store, owned=True)
        atexit.register(group.leave)
        return group

    def leave(self) -> None:
        """Destroy the process group if this object created it. Safe to call more than once."""
        if self.owned and not self.broken and dist.is_initialized():
            self.owned = False
            dist.destroy_process_group()

    # -- progress marks ----------------------------------------------------------------------

    def mark(self, stage: str, value: int) -> None:
        """Record that this rank reached ``value`` of ``stage`` (e.g. forward pass 7)."""
        if self._store is not None:
            self._store.set(f"{stage}/{self.rank}", str(value))

    def marks(self, stage: str) -> dict[int, int | None]:
        """Every other rank's last mark of ``stage`` (None: never marked).

        Raises the store's error where the store does not answer.
        """
        assert self._store is not None
        self._store.set_timeout(datetime.timedelta(seconds=min(self.timeout, 10.0)))
        found: dict[int, int | None] = {}
        for rank in range(self.world_size):
            if rank == self.rank:
                continue
            key = f"{stage}/{rank}"
            found[rank] = int(self._store.get(key)) if self._store.check([key]) else None
        return found

    # -- collectives with diagnosis ----------------------------------------------------------

    def barrier(self) -> None:
        """``dist.barrier()``, naming the ranks that did not arrive where it fails."""
        self._barriers += 1
        self.mark("barrier", self._barriers)
        self.guarded(dist.barrier, "barrier", self._barriers, f"barrier {self._barriers}")

    def all_gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order; also a barrier."""
        self._barriers += 1
        self.mark("barrier", self._barriers)
        gathered: list[Any] = [None] * self.world_size
        self.guarded(
            lambda: dist.all_gather_object(gathered, value),
            "barrier",
            self._barriers,
            f"barrier {self._barriers} (checkpoint)",
        )
        return gathered

    def guarded(self, call: Callable[[], Any], stage: str, value: int, what: str) -> Any:
        """``call()``; a communication failure becomes a :class:`RankFailureError`."""
        try:
            return call()
        except Exception as error:
            if not is_communication_error(error):
                raise
            raise self.failure(error, stage, value, what) from error

    def failure(self, error: BaseException, stage: str, value: int, what: str) -> RankFailureError:
        """The error for a collective that failed while this rank waited at ``what``.

        ``stage``/``value`` are the mark every rank leaves before that collective; the ranks
        whose mark is below ``value`` never arrived.
        """
        self.broken = True
        waited = f"every rank waits at most timeout = {self.timeout:g} s for the others"
        head = f"rank {self.rank} of {self.world_size}: {what} failed"
        if self._store is None:
            return RankFailureError(
                f"{head} ({error}); another rank died or hangs ({waited})",
                rank=self.rank,
                stage=what,
                missing=(),
            )
        try:
            marks = self.marks(stage)
        except Exception as store_error:
            return RankFailureError(
                f"{head} and the rendezvous store did not answer ({store_error}); rank 0, "
                f"which hosts it, probably died or hangs ({waited}). Cause: {error}",
                rank=self.rank,
                stage=what,
                missing=(0,) if self.rank != 0 else (),
            )
        missing = sorted(rank for rank, mark in marks.items() if mark is None or mark < value)
        if not missing:
            return RankFailureError(
                f"{head}: no rank is behind by the progress marks, so one of them died or "
                f"hangs inside this step (the launcher's report names the process that "
                f"exited; {waited}). Cause: {error}",
                rank=self.rank,
                stage=what,
                missing=(),
            )
        described = "; ".join(_describe(rank, marks[rank], stage) for rank in missing)
        names = ", ".join(str(rank) for rank in missing)
        return RankFailureError(
            f"{head}: rank {names} did not reach it ({described}); that process died or "
            f"hangs ({waited}). Cause: {error}",
            rank=self.rank,
            stage=what,
            missing=missing,
        )


def _join_failed(error: BaseException, timeout: float) -> str:
    """One paragraph: which job this process tried to join, why it failed, what to do."""
    job = ", ".join(f"{name}={os.environ.get(name, '')}" for name in _TORCHRUN_VARIABLES)
    text = str(error).strip()
    cause = text.splitlines()[0] if text else "no message"  # C++ stack frames follow it
    head = f"{type(error).__name__}: {cause}"
    if "TORCHELASTIC_RUN_ID" in os.environ:  # a worker of torchrun (or of the launcher)
        return (
            f"this worker could not join the other ranks ({job}) within timeout = "
            f"{timeout:g} s: {head}. Another rank did not come: its own message (above, or "
            "on its machine) says why"
        )
    return (
        f"this process could not join the distributed job that the environment describes "
        f"({job}) within timeout = {timeout:g} s: {head}. These variables make a process "
        "one rank of a job whose other ranks are started elsewhere (torchrun, srun); start "
        "them, or, to let dacapo-trainers start its own workers, run the command without "
        "them (env -u RANK -u WORLD_SIZE -u MASTER_ADDR -u MASTER_PORT dacapo-trainers "
        "train ...)"
    )


def _describe(rank: int, mark: int | None, stage: str) -> str:
    if stage == "forward":
        last = "none yet" if mark is None else f"iteration {mark}"
        return f"rank {rank}'s last forward pass: {last}"
    if stage == "barrier":
        last = "none yet" if mark is None else f"barrier {mark}"
        return f"rank {rank}'s last barrier: {last}"
    return f"rank {rank}'s last {stage}: {mark}"
