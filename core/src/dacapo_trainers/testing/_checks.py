"""The conformance checks that need no training: each returns advice, or None when all is well.

They are plain functions on plain values so that the kit's own tests can feed them any
misbehaviour; :class:`~dacapo_trainers.testing.TrainerConformance` turns their advice into test
failures.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._contract._stats import TrainingIterationStats


class IterationChecker:
    """Checks each :class:`~dacapo_trainers.TrainingIterationStats` as ``iterate()`` yields it.

    :param trainer: the trainer being iterated (its ``iteration`` is read at every yield).
    :param start: ``trainer.iteration`` when ``iterate()`` was called.
    """

    def __init__(self, trainer: Any, start: int) -> None:
        self.trainer = trainer
        self.name = type(trainer).__name__
        self.expected = start
        self.previous: int | None = None
        self.losses: list[float] = []

    def check(self, stats: object) -> str | None:
        """Advice about ``stats``, the next item ``iterate()`` yielded, or None."""
        name = self.name
        if not isinstance(stats, TrainingIterationStats):
            return (
                f"{name}.iterate() yielded {_short(stats)}; it must yield "
                "dacapo_trainers.TrainingIterationStats(iteration=..., loss=..., time=...), one "
                "per training step"
            )
        if stats.iteration != self.expected:
            if self.previous is None:
                return (
                    f"{name}.iterate() yielded iteration {stats.iteration} first, but "
                    f"trainer.iteration was {self.expected}: the first step of iterate() is "
                    "iteration trainer.iteration (the driver sets trainer.iteration when it "
                    "resumes from a checkpoint, and DaCapo calls iterate() again and again)"
                )
            return (
                f"{name}.iterate() yielded iteration {stats.iteration} after "
                f"{self.previous}: iterations must be consecutive"
            )
        if self.trainer.iteration != stats.iteration + 1:
            return (
                f"when {name}.iterate() yielded iteration {stats.iteration}, trainer.iteration "
                f"was {self.trainer.iteration}; it must already be {stats.iteration + 1} "
                f"(set self.iteration = {stats.iteration + 1} before yielding the stats of "
                f"iteration {stats.iteration}: trainer.iteration counts completed iterations)"
            )
        loss = stats.loss
        if isinstance(loss, bool) or not isinstance(loss, (int, float)):
            return (
                f"{name}.iterate(): the loss of iteration {stats.iteration} is "
                f"{type(loss).__module__}.{type(loss).__qualname__}; it must be a Python float "
                "(use loss.item(): stats are written to stats.jsonl and compared as numbers)"
            )
        if not math.isfinite(loss):
            return (
                f"{name}.iterate(): the loss of iteration {stats.iteration} is {loss}; losses "
                "must be finite on the toy problem (check the raw normalization, the target "
                "and weight from task.predictor, and the learning rate of the config under test)"
            )
        if isinstance(stats.time, bool) or not isinstance(stats.time, (int, float)):
            return (
                f"{name}.iterate(): the time of iteration {stats.iteration} is "
                f"{_short(stats.time)}; it must be the step's wall time in seconds (a float)"
            )
        if not stats.time >= 0:
            return (
                f"{name}.iterate(): the time of iteration {stats.iteration} is {stats.time}; "
                "it must be the step's wall time in seconds (time.perf_counter() differences)"
            )
        self.previous = stats.iteration
        self.expected += 1
        self.losses.append(float(loss))
        return None

    def count_problem(self, requested: int, start: int) -> str | None:
        """Advice when ``iterate(requested)`` did not run exactly ``requested`` steps."""
        done = self.expected - start
        if done == requested:
            return None
        return (
            f"{self.name}.iterate({requested}) yielded {done} stats; it must run exactly "
            f"num_iterations = {requested} steps (fewer only when the caller stops early)"
        )


def loss_fall_problem(losses: Sequence[float], window: int, ratio: float) -> str | None:
    """Advice when the mean of the last ``window`` losses is not below ``ratio`` x the first's."""
    if len(losses) < 2 * window:
        return (
            f"only {len(losses)} losses to compare; the check needs at least 2 x loss_window = "
            f"{2 * window}"
        )
    first = sum(losses[:window]) / window
    last = sum(losses[-window:]) / window
    if last < ratio * first:
        return None
    return (
        f"the loss did not fall on the toy problem: the mean of the first {window} losses is "
        f"{first:.4g} and of the last {window} (of {len(losses)}) is {last:.4g}, not below "
        f"{ratio} x {first:.4g} = {ratio * first:.4g}. Check that iterate() steps the optimizer "
        "create_optimizer() returned, computes the loss with task.loss.compute(prediction, "
        "target, weight) on targets from task.predictor, and that the config under test learns "
        "fast (learning rate about 1e-3 to 3e-3, no long warmup); a trainer that learns slowly "
        "by design can raise loss_iterations"
    )


def thread_idents() -> set[int]:
    """Identifiers of the live Python threads."""
    return {t.ident for t in threading.enumerate() if t.ident is not None}


def leftover_threads(before: set[int]) -> list[threading.Thread]:
    """Live threads that were not running when ``before`` was taken.

    Threads of libraries' process-wide pools are not counted (see :func:`library_threads`):
    they outlive every trainer whoever first used the library, and a trainer cannot stop them.
    """
    shared = library_threads()
    return [
        t
        for t in threading.enumerate()
        if t.is_alive() and t.ident not in before and t.ident not in shared
    ]


def library_threads() -> set[int]:
    """Identifiers of threads that belong to libraries' process-wide pools.

    zarr 3 runs every read and write on one event loop in a ``zarr_io`` thread, whose default
    executor (``asyncio_N`` threads) and zarr's own executor grow on demand and live until the
    interpreter exits. They are found through zarr's module state (never imported here), so a
    thread the trainer itself starts, whatever its name, is still counted.
    """
    sync = sys.modules.get("zarr.core.sync")
    if sync is None:
        return set()
    threads: list[Any] = list(getattr(sync, "iothread", None) or [])
    executors = [getattr(sync, "_executor", None)]
    executors += [getattr(loop, "_default_executor", None) for loop in getattr(sync, "loop", [])]
    for executor in executors:
        threads.extend(getattr(executor, "_threads", ()) or ())
    return {t.ident for t in threads if isinstance(t, threading.Thread) and t.ident is not None}


def child_processes() -> dict[int, str]:
    """This process's child processes (pid -> description), zombies included.

    Reads ``/proc`` where there is one, else knows only :mod:`multiprocessing`'s children.
    """
    children = {p.pid: f"{p.name} (multiprocessing)" for p in multiprocessing.active_children()}
    for task in Path(f"/proc/{os.getpid()}/task").glob("*"):
        try:
            listed = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, listed):
            children.setdefault(pid, _describe_process(pid))
    return {pid: text for pid, text in children.items() if pid is not None}


def _describe_process(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "exited"
    command = stat[stat.find("(") + 1 : stat.rfind(")")]
    state = stat[stat.rfind(")") + 2 :].split(" ", 1)[0]
    return f"{command} (zombie: exited but never waited for)" if state == "Z" else command


def leftovers_problem(
    name: str,
    threads: Sequence[threading.Thread],
    processes: dict[int, str],
    how: str,
) -> str | None:
    """Advice when threads or child processes outlived ``__exit__``."""
    if not threads and not processes:
        return None
    found = [f"thread {t.name!r}" for t in threads]
    found += [f"child process {pid} {text}" for pid, text in sorted(processes.items())]
    return (
        f"after `with trainer:` {how}, {name} left {', '.join(found)} running; __exit__ "
        "(close()) must stop and join every thread and process the trainer started, also when "
        "the body raised, and also while an iterate() generator is suspended mid-way"
    )


def zarr_arrays(container: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every array in the zarr container (path, attributes), at any depth; [] if none."""
    import zarr

    try:
        root = zarr.open_group(str(container), mode="r")
    except Exception:  # no group there: no snapshot was written
        return []
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(group: Any, prefix: str) -> None:
        for name, array in group.arrays():
            found.append((f"{prefix}{name}", dict(array.attrs)))
        for name, sub in group.groups():
            walk(sub, f"{prefix}{name}/")

    walk(root, "")
    return sorted(found, key=lambda item: item[0])


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
