"""The training driver end to end: outputs, exact resume after SIGKILL, NaN guard, refusals."""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from run_helpers import CLI, final_weights, run_data, stats_of, write_run

from dacapo_trainers import Registry, hookimpl, load_run_config, train


def test_train_through_the_cli(tensor_cli: CLI, demo_zarr: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    run_file = write_run(tmp_path / "run.yaml", run_data(demo_zarr, output, snapshot_interval=6))
    result = tensor_cli("train", str(run_file))
    assert result.returncode == 0, result.stderr
    assert "trained to iteration 12" in result.stdout
    assert [s["iteration"] for s in stats_of(output)] == list(range(12))
    names = sorted(p.name for p in (output / "checkpoints").iterdir())
    assert names == [f"iteration_{i:08d}.pt{s}" for i in (4, 8, 12) for s in ("", ".sha256")]
    assert (output / "loss.png").stat().st_size > 1000
    assert json.loads((output / "run_config.json").read_text())["num_iterations"] == 12
    assert (output / "snapshots.zarr" / "5" / "raw").exists()
    again = tensor_cli("train", str(run_file))
    assert again.returncode == 0
    assert "nothing to do" in again.stdout


def test_sigkill_then_resume_is_exact(tensor_cli: CLI, demo_zarr: Path, tmp_path: Path) -> None:
    import torch

    straight = tmp_path / "straight"
    run_file = write_run(tmp_path / "a.yaml", run_data(demo_zarr, straight))
    assert tensor_cli("train", str(run_file), "--quiet").returncode == 0

    killed = tmp_path / "killed"
    run_file = write_run(tmp_path / "b.yaml", run_data(demo_zarr, killed, step_delay=0.15))
    process = subprocess.Popen(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), "--quiet"],
        env=tensor_cli.env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill after the checkpoint at 4, before the one at 8
        stats = killed / "stats.jsonl"
        if stats.exists() and len(stats.read_text().splitlines()) >= 6:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The kill fell mid-run: the resume below starts from a checkpoint, not from scratch.
    checkpoints = sorted(p.name for p in (killed / "checkpoints").glob("iteration_*.pt"))
    assert "iteration_00000004.pt" in checkpoints, checkpoints
    assert "iteration_00000012.pt" not in checkpoints, checkpoints
    resumed = tensor_cli("train", str(run_file), "--quiet")
    assert resumed.returncode == 0, resumed.stderr

    assert [s["iteration"] for s in stats_of(killed)] == list(range(12))
    assert [s["loss"] for s in stats_of(killed)] == [s["loss"] for s in stats_of(straight)]
    expected, got = final_weights(straight), final_weights(killed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_nan_loss_stops_and_keeps_the_last_checkpoint(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    run_file = write_run(tmp_path / "run.yaml", run_data(demo_zarr, output, nan_at=6))
    result = tensor_cli("train", str(run_file), "--quiet")
    assert result.returncode == 1
    assert "the loss became nan at iteration 6" in result.stderr
    assert "iteration_00000004.pt" in result.stderr
    assert "Traceback" not in result.stderr
    assert [p.name for p in (output / "checkpoints").glob("*.pt")] == ["iteration_00000004.pt"]
    assert [s["iteration"] for s in stats_of(output)] == list(range(6))


def test_refusal_carries_the_trainers_reason(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    data["datasets"][0]["gt"] = None
    result = tensor_cli("train", str(write_run(tmp_path / "run.yaml", data)))
    assert result.returncode == 1
    assert "cannot train on datasets 'demo': dataset 'demo' has no gt" in result.stderr


def test_refusal_at_build_time_is_clean(tensor_cli: CLI, demo_zarr: Path, tmp_path: Path) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    data["architecture_config"]["input_shape"] = [44, 44, 44]  # the volume is 40^3
    result = tensor_cli("train", str(write_run(tmp_path / "run.yaml", data)))
    assert result.returncode == 1
    assert "cannot build its batch provider: dataset 'demo' is smaller than the model input" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_changed_run_in_the_same_output_is_refused(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    data = run_data(demo_zarr, output)
    data["num_iterations"] = 4
    assert tensor_cli("train", str(write_run(tmp_path / "a.yaml", data)), "--quiet").returncode == 0
    data["num_iterations"] = 8  # training longer is a resume
    assert tensor_cli("train", str(write_run(tmp_path / "b.yaml", data)), "--quiet").returncode == 0
    assert [s["iteration"] for s in stats_of(output)] == list(range(8))
    data["architecture_config"]["num_fmaps"] = 3
    result = tensor_cli("train", str(write_run(tmp_path / "c.yaml", data)), "--quiet")
    assert result.returncode == 2
    assert "holds a run with a different architecture_config" in result.stderr
    assert len(list((output / "checkpoints").glob("*.pt"))) == 2  # nothing written is lost


def test_validate_run_files_checks_every_nested_type(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    assert tensor_cli("validate", str(write_run(tmp_path / "ok.yaml", data))).returncode == 0
    data["trainer_config"]["learning_rate"] = "fast"
    data["task_config"]["__type__"] = "AffinitiesTaskConfg"
    result = tensor_cli("validate", str(write_run(tmp_path / "bad.yaml", data)))
    assert result.returncode == 2
    assert "$.trainer_config.learning_rate: expected float, got 'fast'" in result.stderr
    assert "$.task_config: unknown task type 'AffinitiesTaskConfg'" in result.stderr


class Recorder:
    """A lifecycle observer that records the hook calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def dacapo_trainers_train_start(self, start_iteration: int) -> None:
        self.calls.append(("start", start_iteration))

    @hookimpl
    def dacapo_trainers_train_iteration_end(self, stats: Any) -> None:
        self.calls.append(("iteration", stats.iteration))

    @hookimpl
    def dacapo_trainers_train_snapshot_written(self, iteration: int) -> None:
        self.calls.append(("snapshot", iteration))

    @hookimpl
    def dacapo_trainers_train_checkpoint_written(self, iteration: int, path: Path) -> None:
        assert path.exists()
        self.calls.append(("checkpoint", iteration))

    @hookimpl
    def dacapo_trainers_train_end(self, iteration: int, error: BaseException | None) -> None:
        self.calls.append(("end", iteration, error))


def test_lifecycle_hooks_in_process(
    tensor_site: Path, demo_zarr: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tensor_site))
    plugin = importlib.import_module("dt_tensor.plugin")
    registry = Registry.isolated(plugin)
    data = run_data(demo_zarr, tmp_path / "out", snapshot_interval=3)
    data["num_iterations"] = 6
    run = load_run_config(write_run(tmp_path / "run.yaml", data), registry=registry)
    recorder = Recorder()
    result = train(run, registry=registry, observers=[recorder], quiet=True)
    assert result.worker_status is None
    assert result.iteration == 6
    assert recorder.calls == [
        ("start", 0),
        ("iteration", 0),
        ("iteration", 1),
        ("iteration", 2),
        ("snapshot", 2),
        ("iteration", 3),
        ("checkpoint", 4),
        ("iteration", 4),
        ("iteration", 5),
        ("snapshot", 5),
        ("checkpoint", 6),
        ("end", 6, None),
    ]
    assert recorder not in registry.plugin_manager.get_plugins()  # unregistered after the run


def _run_in_terminal(command: list[str], env: dict[str, str]) -> str:
    """Run ``command`` with a pseudo-terminal as stdout/stderr; return what it printed."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(command, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_and_quiet(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    data["num_iterations"] = 3
    run_file = write_run(tmp_path / "run.yaml", data)
    command = [sys.executable, "-m", "dacapo_trainers", "train", str(run_file)]
    shown = _run_in_terminal(command, tensor_cli.env)
    assert "3/3" in shown
    assert "loss=" in shown
    assert "it/s" in shown or "s/it" in shown
    data["output"] = str(tmp_path / "quiet")
    quiet_run = write_run(tmp_path / "quiet.yaml", data)
    quiet = _run_in_terminal([*command[:-1], str(quiet_run), "--quiet"], tensor_cli.env)
    assert "loss=" not in quiet
    piped = tensor_cli(
        "train",
        str(write_run(tmp_path / "piped.yaml", {**data, "output": str(tmp_path / "piped")})),
    )
    assert piped.returncode == 0
    assert "loss=" not in piped.stderr  # not a terminal: no bar; lines only every 30 s
    assert "tiny: iteration" not in piped.stderr, piped.stderr


def test_plain_progress_lines_when_output_is_redirected(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    """A batch job's log shows how far the run is, at a steady interval (0 s: every step)."""
    data = run_data(demo_zarr, tmp_path / "out")
    data["num_iterations"] = 4
    run_file = write_run(tmp_path / "run.yaml", data)
    every_step = tensor_cli("train", str(run_file), DACAPO_TRAINERS_PROGRESS_INTERVAL="0")
    assert every_step.returncode == 0, every_step.stderr
    lines = [line for line in every_step.stderr.splitlines() if line.startswith("tiny: ")]
    assert [line.split(",")[0] for line in lines] == [
        "tiny: iteration 1/4 (25%)",
        "tiny: iteration 2/4 (50%)",
        "tiny: iteration 3/4 (75%)",
        "tiny: iteration 4/4 (100%)",
        "tiny: iteration 4/4 (100%)",  # the closing line
    ]
    assert all(line.endswith("it/s") and ", loss " in line for line in lines)
    data["output"] = str(tmp_path / "bad")
    bad = tensor_cli(
        "train",
        str(write_run(tmp_path / "bad.yaml", data)),
        DACAPO_TRAINERS_PROGRESS_INTERVAL="often",
    )
    assert bad.returncode == 2
    assert "DACAPO_TRAINERS_PROGRESS_INTERVAL: expects seconds >= 0" in bad.stderr
    assert not (tmp_path / "bad").exists()
