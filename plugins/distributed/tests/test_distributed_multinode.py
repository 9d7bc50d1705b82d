"""Several machines, played by two launchers on this host: the documented command run on each
(``nnodes: 2``, one ``rdzv_endpoint``, one output folder). Real launchers, real workers (one
per "machine", gloo on CPU), real signals.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from distributed_helpers import children, inner_config, run_data, stats_iterations

pytestmark = pytest.mark.slow

#: The launcher's stated bounds (see docs/plugins/distributed.rst): the rendezvous waits at
#: most timeout + 15 s, a SIGTERM ends it within 10 s. The tests allow this much more for a
#: loaded machine; a launcher that hangs (the failure they catch) takes minutes.
SLACK_S = 90.0
TIMEOUT_S = 4.0
#: The timeout of runs that should train: long enough for a loaded machine's slow steps.
TRAINING_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def multi_node_run(
    tmp_path: Path,
    container: Path,
    *,
    port: int,
    num_iterations: int,
    step_delay: float = 0.0,
    timeout: float = TIMEOUT_S,
) -> tuple[Path, Path]:
    """A run file for two machines of one worker each; its output folder."""
    output = tmp_path / "out"
    inner = inner_config(
        __type__="FaultyTrainerConfig", fault="none", step_delay=step_delay, snapshot_interval=None
    )
    run = run_data(
        output,
        container,
        inner,
        num_iterations=num_iterations,
        checkpoint_interval=2,
        nproc_per_node=1,
        nnodes=2,
        rdzv_endpoint=f"127.0.0.1:{port}",
        timeout=timeout,
    )
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(run, sort_keys=False))
    return run_file, output


def environment(faults_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(faults_path), env.get("PYTHONPATH", "")) if p
    )
    return env


def start(run_file: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), "--quiet"],
        env=env,
        cwd=run_file.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], limit: float) -> str:
    """Wait for the process (at most ``limit`` seconds); its stderr."""
    try:
        _, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"still running after {limit:.0f} s:\n{stderr}")
    return stderr


@pytest.fixture
def launchers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def assert_one_clean_paragraph(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "frame #" not in stderr, stderr  # no C++ stack frames
    assert "Exception raised from" not in stderr, stderr


def wait_for_stats(output: Path, lines: int, processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 300
    while not (output / "stats.jsonl").exists() or len(stats_iterations(output)) < lines:
        for process in processes:
            assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the machines did not train"
        time.sleep(0.1)


def test_the_same_command_on_two_machines_trains_one_run(
    tmp_path: Path, demo_container: Path, faults_path: Path, launchers: list[Any]
) -> None:
    run_file, output = multi_node_run(
        tmp_path, demo_container, port=free_port(), num_iterations=6, timeout=TRAINING_TIMEOUT_S
    )
    env = environment(faults_path)
    launchers += [start(run_file, env), start(run_file, env)]
    for launcher in launchers:
        stderr = finish(launcher, 300)
        assert launcher.returncode == 0, stderr
    assert stats_iterations(output) == list(range(6))
    assert (output / "checkpoints" / "iteration_00000006.pt").exists()
    assert not (output / ".lock").exists()


def test_rank_0_holds_the_folder_and_an_independent_run_is_refused(
    tmp_path: Path, demo_container: Path, faults_path: Path, launchers: list[Any]
) -> None:
    run_file, output = multi_node_run(
        tmp_path,
        demo_container,
        port=free_port(),
        num_iterations=1000,
        step_delay=0.5,
        timeout=TRAINING_TIMEOUT_S,
    )
    long = yaml.safe_load(run_file.read_text())
    long["checkpoint_interval"] = 1000  # no checkpoint: only the lock refuses the other run
    run_file.write_text(yaml.safe_dump(long, sort_keys=False))
    env = environment(faults_path)
    launchers += [start(run_file, env), start(run_file, env)]
    wait_for_stats(output, 1, launchers)
    holder = json.loads((output / ".lock").read_text())
    workers = [pid for launcher in launchers for pid in children(launcher.pid)]
    assert holder["pid"] in workers  # a worker (rank 0), not a launcher
    single = dict(long, trainer_config=dict(long["trainer_config"], nnodes=1, rdzv_endpoint=None))
    other = tmp_path / "other"
    other.mkdir()
    (other / "run.yaml").write_text(yaml.safe_dump(single, sort_keys=False))
    refused = start(other / "run.yaml", env)
    refused_err = finish(refused, 300)
    assert refused.returncode == 1, refused_err
    assert f"is in use by another training: pid {holder['pid']}" in refused_err
    for launcher in launchers:
        launcher.send_signal(signal.SIGTERM)
    for launcher in launchers:
        stderr = finish(launcher, SLACK_S)
        assert launcher.returncode != 0, stderr
        assert_one_clean_paragraph(stderr)


def test_a_machine_that_comes_late_within_the_timeout_joins(
    tmp_path: Path, demo_container: Path, faults_path: Path, launchers: list[Any]
) -> None:
    run_file, output = multi_node_run(
        tmp_path, demo_container, port=free_port(), num_iterations=4, timeout=TRAINING_TIMEOUT_S
    )
    env = environment(faults_path)
    launchers.append(start(run_file, env))
    time.sleep(TRAINING_TIMEOUT_S / 6)  # well within the timeout, even on a loaded machine
    launchers.append(start(run_file, env))
    for launcher in launchers:
        stderr = finish(launcher, 300)
        assert launcher.returncode == 0, stderr
    assert stats_iterations(output) == list(range(4))


def test_a_machine_that_never_comes_ends_the_other_within_the_timeout_with_one_line(
    tmp_path: Path, demo_container: Path, faults_path: Path, launchers: list[Any]
) -> None:
    port = free_port()
    run_file, output = multi_node_run(tmp_path, demo_container, port=port, num_iterations=4)
    launchers.append(start(run_file, environment(faults_path)))
    stderr = finish(launchers[0], TIMEOUT_S + 15 + SLACK_S)
    assert launchers[0].returncode == 1, stderr
    assert_one_clean_paragraph(stderr)
    last = stderr.strip().splitlines()[-1]
    assert f"the rendezvous at 127.0.0.1:{port}" in last, stderr
    assert "Start the same command on every machine" in last, stderr
    assert not (output / "stats.jsonl").exists()


def test_a_killed_machine_ends_the_other_with_a_clear_line(
    tmp_path: Path, demo_container: Path, faults_path: Path, launchers: list[Any]
) -> None:
    run_file, output = multi_node_run(
        tmp_path,
        demo_container,
        port=free_port(),
        num_iterations=200,
        step_delay=0.5,
        timeout=TRAINING_TIMEOUT_S,
    )
    env = environment(faults_path)
    launchers += [start(run_file, env), start(run_file, env)]
    wait_for_stats(output, 2, launchers)
    launchers[1].send_signal(signal.SIGKILL)
    finish(launchers[1], 60)
    stderr = finish(launchers[0], TRAINING_TIMEOUT_S + 15 + SLACK_S)
    assert launchers[0].returncode == 1, stderr
    assert_one_clean_paragraph(stderr)
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), stderr
    # the failed rank, the collective that noticed, or the rendezvous its launcher hosted
    assert any(
        words in last for words in ("distributed run failed", "did not reach it", "rendezvous")
    ), stderr
    trained = len(stats_iterations(output))
    assert trained < 200
