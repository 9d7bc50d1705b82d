"""Starting the worker processes with torchrun's launcher API (``elastic_launch``).

The launcher process runs torchrun's elastic agent in-process: it makes (or joins) the
rendezvous (every wait bounded by ``timeout``, see :func:`launch_workers`), starts the
worker program (:mod:`._worker`: ``dacapo-trainers <argv>`` with the
working directory off ``sys.path``, killed when the launcher dies) once per local rank,
watches them, restarts all of them after a failure (up to ``max_restarts``), and returns their
exit status. A SIGINT or SIGTERM to the launcher reaches the workers through the agent, which
sends them SIGTERM (and SIGKILL 30 s later).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from dacapo_trainers import RunLaunch

from ._config import DistributedTrainerConfig
from ._errors import LaunchError
from ._process_group import resolve_backend
from ._stderr_filter import filtered_stderr
from ._watchdog import SIGNAL_GRACE_S, LaunchWatchdog
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
    # torch's C++ warnings (socket retries, with their stack frames) stay out of the
    # workers' stderr; the plugin's own messages say what failed.
    "TORCH_CPP_LOG_LEVEL": "ERROR",
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


def launch_workers(config: DistributedTrainerConfig, launch: RunLaunch) -> int:
    """Train ``launch`` in every worker of this machine; their exit status.

    0 when every worker finished; otherwise the exit code of the first failure (1 where it
    was killed by a signal), after a summary on stderr naming the failed ranks. Every wait is
    bounded: the rendezvous by ``timeout`` (+ :data:`RENDEZVOUS_MARGIN_S`, enforced by
    :class:`LaunchWatchdog` even inside torch's C++ code), a SIGINT/SIGTERM by
    :data:`SIGNAL_GRACE_S`.

    :raises LaunchError: the workers cannot fit this machine, or the rendezvous failed.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import elastic_launch

    check_resources(config)
    launch_config = rendezvous_config(config)
    program, arguments = worker_command(launch.arguments)
    endpoint = launch_config.rdzv_endpoint
    try:
        with (
            _environment(LAUNCH_ENVIRONMENT),
            _environment(_launcher(), replace=True),
            filtered_stderr() as stderr_fd,
            LaunchWatchdog(
                idle_limit_s=idle_limit(config),
                idle_message=functools.partial(_nobody_came, config, endpoint),
                signal_grace_s=SIGNAL_GRACE_S,
                stderr_fd=stderr_fd,
            ),
        ):
            elastic_launch(launch_config, program)(*arguments)
    except ChildFailedError as failed:
        print(f"error: {failure_summary(failed)}", file=sys.stderr)
        return _exit_status(failed)
    except SignalException as stopped:
        # Ctrl-C or a scheduler's SIGTERM: the agent has stopped the workers.
        print(f"interrupted: the launcher received {stopped.sigval.name}", file=sys.stderr)
        return 128 + int(stopped.sigval)
    except RendezvousError as error:
        raise LaunchError(_rendezvous_failed(config, endpoint, error)) from None
    return 0


#: Seconds beyond ``timeout`` that a launcher waits for its rendezvous (store round trips,
#: starting the workers) before the watchdog ends it.
RENDEZVOUS_MARGIN_S = 15.0
#: How long the elastic agent waits for workers it sent SIGTERM before it sends SIGKILL.
_WORKER_SHUTDOWN_S = 5


def rendezvous_config(config: DistributedTrainerConfig) -> Any:
    """torchrun's ``LaunchConfig`` of this machine, every rendezvous wait bounded by
    ``timeout``."""
    from torch.distributed.launcher.api import LaunchConfig

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
    seconds = max(1, math.ceil(config.timeout))
    return LaunchConfig(
        min_nodes=config.nnodes,
        max_nodes=config.max_nnodes or config.nnodes,
        nproc_per_node=local_world_size(config),
        run_id=run_id,
        rdzv_endpoint=endpoint,
        rdzv_backend=backend,
        rdzv_configs={
            "join_timeout": seconds,
            "last_call_timeout": min(seconds, _LAST_CALL_S),
            "close_timeout": seconds,
            "read_timeout": seconds,
        },
        max_restarts=config.max_restarts,
        monitor_interval=0.1,
        shutdown_timeout=_WORKER_SHUTDOWN_S,
    )


#: An elastic rendezvous (max_nnodes above nnodes) waits this long for more machines once
#: nnodes have joined (torchrun's default), at most ``timeout``.
_LAST_CALL_S = 30


def idle_limit(config: DistributedTrainerConfig) -> float:
    """How long the launcher may have no worker running (rendezvous, restarts): ``timeout``
    (plus the elastic last call) + :data:`RENDEZVOUS_MARGIN_S`."""
    last_call = min(config.timeout, _LAST_CALL_S) if config.max_nnodes else 0.0
    return config.timeout + last_call + RENDEZVOUS_MARGIN_S


def check_resources(config: DistributedTrainerConfig) -> None:
    """Refuse workers this machine cannot hold: more than its GPUs (NCCL), or more than the
    CPU cores this process may use (CPU workers).

    :raises LaunchError: with the numbers.
    """
    reason = resource_shortage(config)
    if reason is not None:
        raise LaunchError(reason)


def resource_shortage(config: DistributedTrainerConfig) -> str | None:
    """Why ``nproc_per_node`` workers do not fit this machine, or None."""
    wanted = config.nproc_per_node
    if wanted is None:
        return None
    backend = resolve_backend(config.backend)
    if torch.cuda.is_available() and backend == "nccl":
        gpus = torch.cuda.device_count()
        if wanted > gpus:
            return (
                f"nproc_per_node {wanted} asks for one GPU per worker, but this machine has "
                f"{gpus} visible GPU(s) (CUDA_VISIBLE_DEVICES); set nproc_per_node to at most "
                f"{gpus} (or leave it out: one per GPU)"
            )
        return None
    cores = usable_cores()
    if wanted > cores:
        return (
            f"nproc_per_node {wanted} CPU workers need a core each, but this process may use "
            f"{cores} core(s) on this machine; set nproc_per_node to at most {cores} (each "
            "worker also holds a copy of the model and its data pipeline)"
        )
    return None


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _nobody_came(config: DistributedTrainerConfig, endpoint: str, idle: float) -> str:
    return (
        f"no worker ran on this machine for {idle:.0f} s: the rendezvous at {endpoint} did "
        f"not complete within timeout = {config.timeout:g} s (+ {RENDEZVOUS_MARGIN_S:g} s). "
        f"{_what_to_do(config, endpoint)}"
    )


def _rendezvous_failed(config: DistributedTrainerConfig, endpoint: str, error: Exception) -> str:
    from torch.distributed.elastic.rendezvous.api import RendezvousTimeoutError

    if isinstance(error, RendezvousTimeoutError):
        what = f"did not complete within timeout = {config.timeout:g} s"
        return f"the rendezvous at {endpoint} {what}. {_what_to_do(config, endpoint)}"
    cause = error.__cause__ if error.__cause__ is not None else error
    return (
        f"the rendezvous at {endpoint} failed ({type(cause).__name__}: {first_line(cause)}): "
        "the process that hosts it (the launcher that reached it first) stopped or cannot be "
        "reached; its own message says why. Then run the same command again on every "
        "machine: the run resumes from its last checkpoint"
    )


def _what_to_do(config: DistributedTrainerConfig, endpoint: str) -> str:
    if not config.is_multi_node:
        return (
            f"Check that nothing else listens on {endpoint} and run the command again (or "
            "raise timeout)"
        )
    machines = config.nnodes if config.max_nnodes is None else f"{config.nnodes} or more"
    return (
        f"Start the same command on every machine ({machines} with nnodes = "
        f"{config.nnodes}) within timeout of each other, check that {endpoint} "
        "(rdzv_endpoint) is one of them and that no other program listens on that port there, "
        "or raise timeout"
    )


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (torch's C++ messages carry their stack frames
    on the lines after it)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


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
