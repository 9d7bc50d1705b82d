"""Faults under torchrun: a rank killed (with and without restarts) and a rank that hangs.

The faults come from the test-only ``FaultyTrainerConfig`` plugin (``faults/``): rank 1 kills
itself with SIGKILL, or sleeps forever, right before the step of iteration 4, in the first
worker generation only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from distributed_helpers import (
    inner_config,
    load_checkpoint,
    run_data,
    stats_iterations,
    train,
)

pytestmark = pytest.mark.slow


def faulty(fault: str) -> dict[str, object]:
    return inner_config(__type__="FaultyTrainerConfig", fault=fault, fault_iteration=4)


def test_a_killed_rank_is_restarted_and_the_run_resumes_from_its_checkpoint(
    tmp_path: Path, demo_container: Path, faults_path: Path
) -> None:
    output = tmp_path / "out"
    run = run_data(
        output,
        demo_container,
        faulty("kill"),
        num_iterations=6,
        checkpoint_interval=3,
        max_restarts=1,
    )
    result = train(run, tmp_path, pythonpath=faults_path)
    assert result.returncode == 0, result.stderr
    # torchrun saw rank 1 die and restarted both workers...
    assert re.search(r"exitcode: -9\).*local_rank: 1", result.stderr), result.stderr
    # ...which resumed from iteration 3: each iteration once in the stats, and the end reached.
    assert stats_iterations(output) == [0, 1, 2, 3, 4, 5]
    assert load_checkpoint(output, 6)["iteration"] == 6
    assert load_checkpoint(output, 6)["trainer"]["world_size"] == 2


def test_a_killed_rank_without_restarts_fails_the_run_naming_it(
    tmp_path: Path, demo_container: Path, faults_path: Path
) -> None:
    output = tmp_path / "out"
    run = run_data(output, demo_container, faulty("kill"), num_iterations=6, checkpoint_interval=3)
    result = train(run, tmp_path, pythonpath=faults_path)
    assert result.returncode == 1
    assert "error: the distributed run failed: " in result.stderr
    assert "rank 1 (local rank 1) was killed by SIGKILL" in result.stderr
    # (rank 0, stopped by the launcher, exits 143 or fails its all-reduce: not the cause)
    assert stats_iterations(output)[-1] < 5


def test_a_hung_rank_fails_the_run_within_the_timeout_naming_it(
    tmp_path: Path, demo_container: Path, faults_path: Path
) -> None:
    output = tmp_path / "out"
    run = run_data(
        output,
        demo_container,
        faulty("hang"),
        num_iterations=6,
        checkpoint_interval=3,
        timeout=3.0,
    )
    # The subprocess limit (RUN_LIMIT_S) is the safety net: without the timeout this hangs.
    result = train(run, tmp_path, pythonpath=faults_path)
    assert result.returncode == 1
    assert (
        "error: rank 0 of 2: the gradient all-reduce of iteration 4 failed: rank 1 did not "
        "reach it (rank 1's last forward pass: iteration 3); that process died or hangs "
        "(every rank waits at most timeout = 3 s for the others)"
    ) in result.stderr
    assert stats_iterations(output) == [0, 1, 2, 3]
