"""Limits before and during the launch: workers that cannot fit are refused before any is
started; every wait for a rendezvous that does not come ends within its timeout plus the
stated margin, a SIGTERM within seconds, each with one line and no C++ stack frames.
Real launchers and real sockets on 127.0.0.1.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from distributed_helpers import inner_config, run_data
from test_distributed_multinode import (
    SLACK_S,
    TIMEOUT_S,
    assert_one_clean_paragraph,
    environment,
    finish,
    free_port,
    start,
)

from dacapo_trainers_distributed._launch import RENDEZVOUS_MARGIN_S, usable_cores
from dacapo_trainers_distributed._watchdog import SIGNAL_GRACE_S

pytestmark = pytest.mark.slow


def write_run(tmp_path: Path, container: Path, **distributed: object) -> tuple[Path, Path]:
    output = tmp_path / "out"
    inner = inner_config(__type__="FaultyTrainerConfig", fault="none", snapshot_interval=None)
    run = run_data(output, container, inner, num_iterations=2, checkpoint_interval=2)
    run["trainer_config"].update(distributed)
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(run, sort_keys=False))
    return run_file, output


@pytest.fixture
def silent_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """A foreign program on a port: it accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_more_workers_than_cores_are_refused_before_any_starts(
    tmp_path: Path, demo_container: Path, faults_path: Path
) -> None:
    wanted = usable_cores() + 998
    run_file, output = write_run(tmp_path, demo_container, nproc_per_node=wanted)
    env = environment(faults_path)
    for command in (["validate", "--inputs"], ["train"]):
        result = subprocess.run(
            [sys.executable, "-m", "dacapo_trainers", *command, str(run_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode != 0, result.stderr
        assert f"nproc_per_node {wanted} CPU workers need a core each" in result.stderr
        assert f"this process may use {usable_cores()} core(s)" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (output / "run_config.json").exists()  # refused before anything was written


def test_a_port_held_by_a_silent_program_ends_the_launch_within_the_timeout(
    tmp_path: Path,
    demo_container: Path,
    faults_path: Path,
    silent_listener: tuple[int, list[socket.socket]],
) -> None:
    endpoint = f"127.0.0.1:{silent_listener[0]}"
    run_file, _ = write_run(
        tmp_path,
        demo_container,
        nproc_per_node=1,
        nnodes=2,
        rdzv_endpoint=endpoint,
        timeout=TIMEOUT_S,
    )
    launcher = start(run_file, environment(faults_path))
    stderr = finish(launcher, TIMEOUT_S + RENDEZVOUS_MARGIN_S + SLACK_S)
    assert launcher.returncode == 1, stderr
    assert_one_clean_paragraph(stderr)
    last = stderr.strip().splitlines()[-1]
    assert f"the rendezvous at {endpoint}" in last, stderr
    assert "no other program listens on that port" in last


def test_sigterm_ends_a_launcher_stuck_in_the_rendezvous_within_seconds(
    tmp_path: Path,
    demo_container: Path,
    faults_path: Path,
    silent_listener: tuple[int, list[socket.socket]],
) -> None:
    endpoint = f"127.0.0.1:{silent_listener[0]}"
    run_file, _ = write_run(
        tmp_path,
        demo_container,
        nproc_per_node=1,
        nnodes=2,
        rdzv_endpoint=endpoint,
        timeout=600.0,
    )
    launcher = start(run_file, environment(faults_path))
    deadline = time.monotonic() + 300
    while not silent_listener[1]:  # the launcher reached the store
        assert launcher.poll() is None, launcher.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    launcher.send_signal(signal.SIGTERM)
    stderr = finish(launcher, SIGNAL_GRACE_S + SLACK_S)
    assert launcher.returncode == 143, stderr
    assert_one_clean_paragraph(stderr)
    assert "SIGTERM" in stderr.strip().splitlines()[-1]


def test_torchrun_variables_left_in_the_environment_end_within_the_timeout_saying_so(
    tmp_path: Path, demo_container: Path, faults_path: Path
) -> None:
    run_file, _ = write_run(tmp_path, demo_container, nproc_per_node=1, timeout=TIMEOUT_S)
    env = environment(faults_path)
    env.update(RANK="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    launcher = start(run_file, env)
    stderr = finish(launcher, TIMEOUT_S + SLACK_S)
    assert launcher.returncode != 0, stderr
    assert_one_clean_paragraph(stderr)
    assert "could not join the distributed job" in stderr, stderr
    assert "RANK=1, WORLD_SIZE=2" in stderr
    assert "env -u RANK" in stderr
    assert "This is a bug" not in stderr
