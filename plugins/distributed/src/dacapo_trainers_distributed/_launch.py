"""Starting the worker processes with torchrun's launcher API (``elastic_launch``).

The launcher process runs torchrun's elastic agent in-process: it makes (or joins) the
rendezvous, starts the worker program (:mod:`._worker`: ``dacapo-trainers <argv>`` with the
working directory off ``sys.path``, killed when the launcher dies) once per local rank,
watches them, restarts all of them after a failure (up to ``max_restarts``), and returns their
exit status. A SIGINT or SIGTERM to the launcher reaches the workers through the agent, which
sends them SIGTERM (and SIGKILL 30 s later).
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch

from ._config import DistributedTrainerConfig
from ._errors import LaunchError
from ._worker import LAUNCHER_PID_VARIABLE

#: Set in the launched environment (unless already set). Each worker generation creates its
#: own rendezvous store instead of reusing the elastic agent's: with torch 2.13's default
#: (reuse), the gloo group of a generation restarted by ``max_restarts`` fails to connect
#: ("Gloo connectFullMesh failed ... Connect timeout") because the store still holds the dead
#: generation's addresses. (Joining also guards against that, see ``generation()``.)
LAUNCH_ENVIRONMENT: Mapping[str, str] = {
    "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
    # As torchrun: one intra-op thread per worker unless the user chose otherwise, so that
    # nproc_per_node CPU workers do not oversubscribe the cores.
    "OMP_NUM_THREADS": "1",
}


def local_world_size(config: DistributedTrainerConfig) -> int:
    """``nproc_per_node``, or one per visible CUDA GPU (1 without CUDA)."""
    if config.nproc_per_node is not None:
        return config.nproc_per_node
    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1


def worker_command(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The program and arguments every worker runs:
    ``python -P -u -m dacapo_trainers_distributed._worker <argv>`` (see :mod:`._worker`)."""
    return sys.executable, ["-P", "-u", "-m", f"{__package__}._worker", *argv]


def launch_workers(config: DistributedTrainerConfig, argv: Sequence[str]) -> int:
    """Run ``dacapo-trainers <argv>`` in every worker of this machine; their exit status.

    0 when every worker finished; otherwise the exit code of the first failure (1 where it
    was killed by a signal), after a summary on stderr naming the failed ranks.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if config.rdzv_endpoint is None:
        if config.is_multi_node:
            raise LaunchError(
                f"{config.type_name()} {config.name!r} spans several machines "
                f"(nnodes {config.nnodes}, max_nnodes {config.max_nnodes}) but sets no "
                "rdzv_endpoint; set it to host:port of one of them"
            )
        # torchrun --standalone: a local rendezvous on a free port.
        backend, endpoint, run_id = "c10d", "localhost:0", str(uuid.uuid4())
    else:
        backend, endpoint = config.rdzv_backend, config.rdzv_endpoint
        run_id = config.rdzv_id or f"dacapo-{config.name}"
    launch_config = LaunchConfig(
        min_nodes=config.nnodes,
        max_nodes=config.max_nnodes or config.nnodes,
        nproc_per_node=local_world_size(config),
        run_id=run_id,
        rdzv_endpoint=endpoint,
        rdzv_backend=backend,
        max_restarts=config.max_restarts,
        monitor_interval=0.1,
    )
    program, arguments = worker_command(argv)
    try:
        with _environment(LAUNCH_ENVIRONMENT), _environment(_launcher(), replace=True):
            elastic_launch(launch_config, program)(*arguments)
    except ChildFailedError as failed:
        print(f"error: {failure_summary(failed)}", file=sys.stderr)
        return _exit_status(failed)
    except SignalException as stopped:
        # Ctrl-C or a scheduler's SIGTERM: the agent has stopped the workers.
        print(f"interrupted: the launcher received {stopped.sigval.name}", file=sys.stderr)
        return 128 + int(stopped.sigval)
    except RendezvousError as error:
        raise LaunchError(
            f"the rendezvous at {endpoint} ({backend}) failed: {error}. Check that every "
            f"machine runs the same command with the same rdzv_endpoint and that "
            f"nnodes = {config.nnodes} machines start"
        ) from error
    return 0


def failure_summary(failed: object) -> str:
    """One paragraph naming each failed rank and how it ended."""
    failures = getattr(failed, "failures", {})
    parts = []
    for rank, failure in sorted(failures.items()):
        parts.append(f"rank {rank} (local rank {failure.local_rank}) {_ending(failure.exitcode)}")
    restarts = "; ".join(parts) if parts else str(failed)
    return (
        f"the distributed run failed: {restarts}. The workers' own messages are above; "
        "a rank stopped by SIGTERM was stopped by the launcher because another one failed"
    )


#: Exit statuses of a worker that a signal stopped cleanly (the driver exits 128 + signal).
_STOPPED = {128 + signal.SIGTERM: signal.SIGTERM, 128 + signal.SIGINT: signal.SIGINT}


def _ending(exitcode: int) -> str:
    if exitcode in _STOPPED:
        return f"stopped on {_STOPPED[exitcode].name} (exit status {exitcode})"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with status {exitcode}"


def _exit_status(failed: object) -> int:
    """The root cause's exit code (torchrun's first observed failure), else the first > 0.

    A rank that a signal stopped (killed, or exiting 130/143 after its SIGTERM) is not a root
    cause: the launcher stops the others that way when one fails.
    """
    failures = getattr(failed, "failures", {})
    codes = [f.exitcode for _, f in sorted(failures.items())]
    first = getattr(failed, "get_first_failure", None)
    if first is not None and failures:
        codes.insert(0, first()[1].exitcode)
    positive = [code for code in codes if code > 0 and code not in _STOPPED]
    return positive[0] if positive else 1


def _launcher() -> dict[str, str]:
    """What the workers learn about their launcher: its pid (see :mod:`._worker`)."""
    return {LAUNCHER_PID_VARIABLE: str(os.getpid())}


@contextmanager
def _environment(values: Mapping[str, str], replace: bool = False) -> Iterator[None]:
    """Set the variables (only those not set yet, unless ``replace``) for the block."""
    saved = {name: os.environ.get(name) for name in values}
    changed = [name for name in values if replace or name not in os.environ]
    for name in changed:
        os.environ[name] = values[name]
    try:
        yield
    finally:
        for name in changed:
            value = saved[name]
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
