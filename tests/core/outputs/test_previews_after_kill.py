"""Every snapshot ends with its preview and its TensorBoard image, also after SIGKILL.

The previews are drawn on a background thread, behind the training; a kill lands while some
are still queued. Those of iterations at or before the checkpoint the run resumes from are
never written again by the trainer, so the resumed run draws them from ``snapshots.zarr``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from run_helpers import CLI, RUN_LIMIT_S, finish, run_data, start_training, write_run

from dacapo_trainers._outputs._tensorboard import logged_image_steps, snapshot_iterations


def _wait_for(path: Path, process: object) -> None:
    deadline = time.monotonic() + RUN_LIMIT_S
    while not path.exists():
        assert process.poll() is None, "the run ended before the kill"  # type: ignore[attr-defined]
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_previews_queued_when_sigkill_lands_are_drawn_on_resume(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    # A snapshot every iteration: the preview thread falls behind the fast steps.
    data = {**run_data(demo_zarr, output, snapshot_interval=1), "tensorboard": True}
    run_file = write_run(tmp_path / "run.yaml", data)
    killed = start_training(run_file, tensor_cli.env)
    _wait_for(output / "checkpoints" / "iteration_00000008.pt", killed)
    killed.send_signal(signal.SIGKILL)
    finish(killed)
    snapshots = output / "snapshots.zarr"
    drawn = {int(p.stem) for p in (output / "snapshots").glob("*.png")}
    lost = [i for i in snapshot_iterations(snapshots) if i < 8 and i not in drawn]
    assert lost, f"every preview was drawn before the kill ({sorted(drawn)}): no attack"
    resumed = tensor_cli("train", str(run_file), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert snapshot_iterations(snapshots) == list(range(12))
    assert sorted(int(p.stem) for p in (output / "snapshots").glob("*.png")) == list(range(12))
    assert logged_image_steps(output / "tensorboard") == set(range(12))
