"""One training per output folder: the lock, its holder in the message, stale locks, temporaries.

Real processes on real folders: a second ``train`` while the first runs (the same run, or the
same run made longer), a training killed with SIGKILL, files killed writers leave behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_helpers import (
    CLI,
    finish,
    run_data,
    start_training,
    stats_of,
    wait_for_stats,
    write_run,
)

from dacapo_trainers import OutputLockedError
from dacapo_trainers._outputs._atomic import is_temporary, temporary_path
from dacapo_trainers._outputs._output_folder import LOCK_FILE, OutputFolder


def test_a_second_training_on_a_running_folder_is_refused_naming_the_holder(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    # Slow steps: the first run still trains while the others start (each takes seconds).
    data = run_data(demo_zarr, output, step_delay=2.0)
    run_file = write_run(tmp_path / "run.yaml", data)
    longer = write_run(tmp_path / "longer.yaml", {**data, "num_iterations": 20})
    first = start_training(run_file, tensor_cli.env)
    try:
        wait_for_stats(output, 2, first)
        holder = f"pid {first.pid} on host {socket.gethostname()}"
        for attempt in (run_file, longer):  # the same run, and the run trained longer
            second = tensor_cli("train", str(attempt), "--quiet")
            assert second.returncode == 1, second.stderr
            assert second.stderr.startswith(
                f"error: the output folder {output} is in use by another training: {holder}"
            ), second.stderr
            assert "Traceback" not in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
            assert first.poll() is None, "the first run ended: the refusal proves nothing"
    finally:
        stderr = finish(first)
    assert first.returncode == 0, stderr
    # The refused runs touched nothing: every iteration once, all checkpoints of the first.
    assert [s["iteration"] for s in stats_of(output)] == list(range(12))
    assert not (output / LOCK_FILE).exists()  # released (and removed) at the end
    resumed = tensor_cli("train", str(longer), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert [s["iteration"] for s in stats_of(output)] == list(range(20))


def test_a_lock_left_by_a_killed_training_is_taken_over(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    run_file = write_run(tmp_path / "run.yaml", run_data(demo_zarr, output, step_delay=0.1))
    killed = start_training(run_file, tensor_cli.env)
    wait_for_stats(output, 5, killed)  # after the checkpoint of iteration 4
    killed.send_signal(signal.SIGKILL)
    finish(killed)
    left = json.loads((output / LOCK_FILE).read_text())
    assert left["pid"] == killed.pid
    assert left["host"] == socket.gethostname()
    again = tensor_cli("train", str(run_file), "--quiet")
    assert again.returncode == 0, again.stderr
    assert [s["iteration"] for s in stats_of(output)] == list(range(12))


def test_temporaries_of_killed_writers_are_removed_at_the_next_start(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    data = {**run_data(demo_zarr, output), "num_iterations": 4}
    run_file = write_run(tmp_path / "run.yaml", data)
    assert tensor_cli("train", str(run_file), "--quiet").returncode == 0
    checkpoints = output / "checkpoints"
    left_behind = [
        output / ".stats.jsonl.4242.0badc0de.tmp",
        output / ".run_config.json.tmp",  # the fixed names of earlier versions
        output / "stats.jsonl.tmp",
        output / ".loss.png.tmp.png",
        output / "snapshots" / ".00000004.png.4242.0badc0de.tmp",  # a preview
        checkpoints / ".iteration_00000008.pt.4242.tmp",
        checkpoints / ".iteration_00000008.pt.4242.0badc0de.tmp",
        checkpoints / "iteration_00000008.pt.sha256",  # its checkpoint never moved into place
    ]
    kept = [output / "notes.tmp", output / ".hidden", checkpoints / "iteration_00000004.pt"]
    for path in left_behind:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"partial")
    for path in kept[:2]:
        path.write_text("mine")
    longer = write_run(tmp_path / "longer.yaml", {**data, "num_iterations": 6})
    result = tensor_cli("train", str(longer), "--quiet")
    assert result.returncode == 0, result.stderr
    assert [path for path in left_behind if path.exists()] == []
    assert all(path.exists() for path in kept)


def test_temporary_names_are_unique_per_process_and_call(tmp_path: Path) -> None:
    target = tmp_path / "stats.jsonl"
    names = {temporary_path(target) for _ in range(100)}
    assert len(names) == 100
    assert all(f".{os.getpid()}." in name.name and is_temporary(name.name) for name in names)
    assert not is_temporary("stats.jsonl") and not is_temporary(".tmp")


def test_the_lock_holds_against_a_second_claim_in_the_same_process(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path / "out")
    with folder.claim():
        with pytest.raises(OutputLockedError) as refused:  # noqa: SIM117 - the claim is the test
            with OutputFolder(tmp_path / "out").claim():
                pass
        assert refused.value.holder["pid"] == os.getpid()
    with OutputFolder(tmp_path / "out").claim():  # released
        pass


def test_workers_of_the_holder_write_under_its_lock_and_others_do_not(tmp_path: Path) -> None:
    folder = OutputFolder((tmp_path / "out").resolve())
    probe = textwrap.dedent(
        f"""
        from pathlib import Path
        from dacapo_trainers._outputs._output_folder import OutputFolder
        print(OutputFolder(Path({str(folder.path)!r})).held_by_parent())
        """
    )
    with folder.claim():
        child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        # A grandchild (not started by the holder) must take the lock itself.
        grandchild = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import subprocess, sys; subprocess.run([sys.executable, '-c', {probe!r}])",
            ],
            capture_output=True,
            text=True,
        )
    assert child.stdout.strip() == "True", child.stderr
    assert grandchild.stdout.strip() == "False", grandchild.stderr
    other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert other.stdout.strip() == "False"  # no holder any more


def test_an_output_that_is_a_file_or_read_only_is_refused_before_training(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    result = tensor_cli("train", str(write_run(tmp_path / "a.yaml", run_data(demo_zarr, a_file))))
    assert result.returncode == 1
    assert f"the output folder {a_file} ($.output) cannot be used: it exists and is not a " in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    with _read_only(read_only):
        for output, failure in [
            (read_only, "its lock file cannot be created"),
            (read_only / "out", "it cannot be created"),
        ]:
            data = run_data(demo_zarr, output)
            result = tensor_cli("train", str(write_run(tmp_path / "b.yaml", data)))
            assert result.returncode == 1
            assert f"{output} ($.output) cannot be used: {failure} (" in result.stderr
            assert "Traceback" not in result.stderr
            assert list(read_only.iterdir()) == []


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """A folder no one can write to: mode 555, and for root (who ignores modes) immutable."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
        pytest.skip("running as root without chattr +i: no folder is read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
