"""The launcher's life is the run's: it holds the output folder's lock (its workers write under
it), its workers die with it (SIGKILL) or end cleanly with it (SIGTERM), and they import
nothing from the working directory. Real torchrun jobs, real signals.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from distributed_helpers import (
    RUN_LIMIT_S,
    children,
    inner_config,
    run_data,
    stats_iterations,
)

from dacapo_trainers_distributed._worker import LAUNCHER_PID_VARIABLE

pytestmark = pytest.mark.slow
#: The command as installed: its sys.path does not start with the working directory (so that
#: only the workers are on trial in the working-directory test).
COMMAND = str(Path(sys.executable).with_name("dacapo-trainers"))
#: A module in the working directory that must never be imported.
TRAP = """
import os
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "IMPORTED"), "a") as f:
    f.write(str(os.getpid()) + "\\n")
"""


def _slow_run(tmp_path: Path, container: Path, num_iterations: int) -> tuple[Path, Path]:
    """A run file whose ranks sleep after each step; its output folder."""
    output = tmp_path / "out"
    inner = inner_config(
        __type__="FaultyTrainerConfig", fault="none", step_delay=1.0, snapshot_interval=None
    )
    run = run_data(output, container, inner, num_iterations=num_iterations, checkpoint_interval=2)
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(run, sort_keys=False))
    return run_file, output


def _environment(faults_path: Path, **extra: str) -> dict[str, str]:
    environment = {**os.environ, **extra}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(faults_path), environment.get("PYTHONPATH", "")) if p
    )
    return environment


def _start(run_file: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [COMMAND, "train", str(run_file), "--quiet"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_stats(output: Path, lines: int, launcher: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + RUN_LIMIT_S
    while not (output / "stats.jsonl").exists() or len(stats_iterations(output)) < lines:
        assert launcher.poll() is None, launcher.communicate()[1]
        assert time.monotonic() < deadline, "the workers did not train"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_until_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + RUN_LIMIT_S
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


def test_workers_die_with_a_killed_launcher_and_a_rerun_resumes(
    tmp_path: Path, demo_container: Path, faults_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "tqdm.py").write_text(TRAP)  # rank 0's progress bar imports tqdm
    run_file, output = _slow_run(tmp_path, demo_container, num_iterations=40)
    environment = _environment(faults_path)
    launcher = _start(run_file, workdir, environment)
    try:
        _wait_for_stats(output, 3, launcher)
        workers = children(launcher.pid)
        assert len(workers) == 2, workers
        # The launcher holds the lock: a second command is refused, naming the launcher.
        second = subprocess.run(
            [COMMAND, "train", str(run_file), "--quiet"],
            cwd=workdir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=RUN_LIMIT_S,
        )
        assert second.returncode == 1
        assert (
            f"is in use by another training: pid {launcher.pid} on host {socket.gethostname()}"
        ) in second.stderr
        launcher.send_signal(signal.SIGKILL)
        launcher.communicate(timeout=RUN_LIMIT_S)
        assert _wait_until_gone(workers) == []  # parent-death signal: no orphan trains on
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()
    trained = len(stats_iterations(output))
    shorter = yaml.safe_load(run_file.read_text())
    shorter["num_iterations"] = trained + 2  # resume and finish soon
    run_file.write_text(yaml.safe_dump(shorter, sort_keys=False))
    resumed = subprocess.run(
        [COMMAND, "train", str(run_file), "--quiet"],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert stats_iterations(output) == list(range(trained + 2))
    assert not (workdir / "IMPORTED").exists()  # the working directory's tqdm.py never ran


def test_sigterm_to_the_launcher_ends_every_worker_through_its_train_end_hooks(
    tmp_path: Path, demo_container: Path, faults_path: Path
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    run_file, output = _slow_run(tmp_path, demo_container, num_iterations=40)
    launcher = _start(run_file, tmp_path, _environment(faults_path, DT_HOOK_LOG=str(hooks)))
    try:
        _wait_for_stats(output, 3, launcher)
        workers = children(launcher.pid)
        assert len(workers) == 2, workers
        launcher.send_signal(signal.SIGTERM)
        _, stderr = launcher.communicate(timeout=RUN_LIMIT_S)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()
    assert launcher.returncode == 143, stderr
    assert "interrupted: the launcher received SIGTERM" in stderr
    assert "Traceback" not in stderr
    assert _wait_until_gone(workers) == []
    for rank in (0, 1):
        ended = (hooks / f"rank{rank}.log").read_text().split()
        assert ended[0] == "train_end", ended
    assert not (output / ".lock").exists()


def test_a_worker_whose_launcher_is_gone_stops_at_once(tmp_path: Path) -> None:
    environment = {**os.environ, LAUNCHER_PID_VARIABLE: str(os.getpid() + 1_000_000)}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "dacapo_trainers_distributed._worker", "--version"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
    )
    assert result.returncode == 1
    assert "the launcher (pid" in result.stderr and "exited before this worker started" in (
        result.stderr
    )
