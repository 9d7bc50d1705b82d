"""SIGTERM and SIGINT end a run cleanly: the step finishes, a checkpoint is written, the
``train_end`` hooks run, the exit status is 128 + the signal, one line says what happened; a
second signal abandons the step at once. Real processes, real signals.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from run_helpers import (
    CLI,
    final_weights,
    finish,
    run_data,
    start_training,
    stats_of,
    wait_for_line,
    wait_for_stats,
    write_run,
)


@pytest.mark.parametrize(
    ("number", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_signal_finishes_the_step_checkpoints_it_and_the_run_resumes_exactly(
    number: signal.Signals, status: int, tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    straight = tmp_path / "straight"
    run_file = write_run(tmp_path / "a.yaml", run_data(demo_zarr, straight))
    assert tensor_cli("train", str(run_file), "--quiet").returncode == 0

    stopped = tmp_path / "stopped"
    hooks = tmp_path / "hooks.log"
    run_file = write_run(tmp_path / "b.yaml", run_data(demo_zarr, stopped, step_delay=0.3))
    process = start_training(run_file, {**tensor_cli.env, "DT_HOOK_LOG": str(hooks)})
    wait_for_stats(stopped, 5, process)  # past the checkpoint of iteration 4
    process.send_signal(number)
    stderr = finish(process)
    assert process.returncode == status, stderr
    done = len(stats_of(stopped))  # the step under way when the signal came was finished
    assert 5 <= done < 12
    assert stderr.strip().splitlines()[-1] == (
        f"stopped by {number.name} after iteration {done}; checkpoint "
        f"{stopped / 'checkpoints' / f'iteration_{done:08d}.pt'} written, the same command "
        "resumes from it"
    )
    assert "Traceback" not in stderr
    assert hooks.read_text().splitlines() == ["train_start 0", f"train_end {done} RunInterrupted"]
    assert (stopped / "loss.png").exists()  # the stats writer's train_end drew it

    resumed = tensor_cli("train", str(run_file), "--quiet", DT_HOOK_LOG=str(hooks))
    assert resumed.returncode == 0, resumed.stderr
    assert hooks.read_text().splitlines()[-2:] == [f"train_start {done}", "train_end 12 None"]
    assert [s["iteration"] for s in stats_of(stopped)] == list(range(12))
    assert [s["loss"] for s in stats_of(stopped)] == [s["loss"] for s in stats_of(straight)]
    expected, got = final_weights(straight), final_weights(stopped)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_a_second_sigterm_abandons_the_step_at_once(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    hooks = tmp_path / "hooks.log"
    # A step of 30 s (a sleep at its end): both signals come while the first one runs.
    run_file = write_run(tmp_path / "run.yaml", run_data(demo_zarr, output, step_delay=30.0))
    process = start_training(run_file, {**tensor_cli.env, "DT_HOOK_LOG": str(hooks)}, quiet=False)
    wait_for_line(hooks, "train_start 0", process)
    process.send_signal(signal.SIGTERM)
    assert process.stderr is not None
    notice = ""
    while "stopping after this iteration" not in notice:  # the first one was handled
        notice = process.stderr.readline()
        assert notice, "the run ended without noticing the first SIGTERM"
    assert notice == (
        "SIGTERM: stopping after this iteration with a checkpoint (send SIGTERM again to stop "
        "at once)\n"
    )
    process.send_signal(signal.SIGTERM)
    stderr = finish(process)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines() == [
        "stopped by SIGTERM during iteration 0 (the step was abandoned); the same command "
        "starts over (no checkpoint yet)"
    ]
    assert hooks.read_text().splitlines() == ["train_start 0", "train_end 0 RunInterrupted"]
    assert not list((output / "checkpoints").glob("*.pt"))
    assert not (output / ".lock").exists()
