"""Run files of the tiny real trainer (dt-tensor), the command run with throwaway plugins on
``PYTHONPATH`` (:class:`CLI`, the ``cli`` fixtures' type) and what runs leave behind, for the
tests of the driver, the output folder's lock, signals and checkpoints.

A uniquely named module (not ``conftest``), so that test runs over several packages do not
import another package's helpers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from dacapo_trainers.testing import tiny_run_data

#: Safety net for a process that should end: far above what any run here takes.
RUN_LIMIT_S = 300


def run_data(demo_zarr: Path, output: Path, **trainer: Any) -> dict[str, Any]:
    """A 12-iteration run of the tiny trainer with checkpoints every 4 iterations."""
    config = {"__type__": "TinyTrainerConfig", "name": "tiny", "batch_size": 2}
    return tiny_run_data(
        {**config, "learning_rate": 0.01, **trainer},
        demo_zarr,
        output,
        name="tiny",
        num_iterations=12,
        checkpoint_interval=4,
        seed=7,
    )


def write_run(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def stats_of(output: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (output / "stats.jsonl").read_text().splitlines()]


def stats_lines(output: Path) -> int:
    """Complete lines in ``stats.jsonl`` so far (0 before it exists)."""
    path = output / "stats.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().splitlines(keepends=True) if line.endswith(b"\n"))


def final_weights(output: Path) -> dict[str, Any]:
    import torch

    checkpoints = sorted((output / "checkpoints").glob("iteration_*.pt"))
    return torch.load(checkpoints[-1], weights_only=True)["model"]


def start_training(
    run_file: Path, env: dict[str, str], quiet: bool = True
) -> subprocess.Popen[str]:
    """``python -m dacapo_trainers train RUN_FILE [--quiet]`` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), *["--quiet"] * quiet],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_stats(output: Path, lines: int, process: subprocess.Popen[str]) -> None:
    """Wait until ``stats.jsonl`` has ``lines`` complete lines (the run must still be going)."""
    deadline = time.monotonic() + RUN_LIMIT_S
    while stats_lines(output) < lines:
        if process.poll() is not None:
            raise AssertionError(f"the run ended early ({process.returncode}): {finish(process)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {lines} stats lines in {RUN_LIMIT_S} s")
        time.sleep(0.02)


def wait_for_line(path: Path, line: str, process: subprocess.Popen[str]) -> None:
    """Wait until the file ``path`` holds the line ``line`` (the process must still run)."""
    deadline = time.monotonic() + RUN_LIMIT_S
    while not (path.exists() and line in path.read_text().splitlines()):
        if process.poll() is not None:
            raise AssertionError(f"the run ended early ({process.returncode}): {finish(process)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no line {line!r} in {path} in {RUN_LIMIT_S} s")
        time.sleep(0.02)


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for the process; its stderr."""
    _, stderr = process.communicate(timeout=RUN_LIMIT_S)
    return stderr


def alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def wait_until_gone(pids: list[int]) -> list[int]:
    """Wait (up to RUN_LIMIT_S) until no process of ``pids`` is alive; those still alive."""
    deadline = time.monotonic() + RUN_LIMIT_S
    while time.monotonic() < deadline:
        living = [pid for pid in pids if alive(pid)]
        if not living:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m dacapo_trainers ARGS`` in ``cwd``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


class CLI:
    """Runs ``python -m dacapo_trainers`` in a subprocess with plugins on PYTHONPATH."""

    def __init__(self, site: Path, tmp_path: Path) -> None:
        self.site = site
        self.import_log = tmp_path / "imports.log"
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("DACAPO_")
        }
        self.env["PYTHONPATH"] = str(site)
        self.env["DT_IMPORT_LOG"] = str(self.import_log)

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dacapo_trainers", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def imported(self) -> list[str]:
        """Plugin modules imported by the runs so far (each logs itself when imported)."""
        if not self.import_log.exists():
            return []
        return self.import_log.read_text().split()
