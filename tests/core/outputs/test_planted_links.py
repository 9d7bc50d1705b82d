"""Symbolic links planted in a run folder are never written through.

Whoever can write to a shared runs folder can put a link at a name the next training writes
(``.lock``, ``stats.jsonl``, a checkpoint, a preview) pointing at a file of the user who trains.
Each attack plants such a link to a victim file and runs a real training; the victim must be
unchanged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from run_helpers import CLI, finish, run_data, start_training, wait_for_stats, write_run

from dacapo_trainers import OutputFolderError
from dacapo_trainers._outputs import _atomic
from dacapo_trainers._outputs._atomic import atomic_writer
from dacapo_trainers._outputs._output_folder import LOCK_FILE, OutputFolder

VICTIM = b"the victim's own bytes\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    return victim


def test_the_lock_is_never_opened_through_a_link(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    for planted in (victim, tmp_path / "missing"):  # to a file, and dangling (O_CREAT)
        output = tmp_path / f"out-{planted.name}"
        output.mkdir()
        (output / LOCK_FILE).symlink_to(planted)
        with (
            pytest.raises(OutputFolderError, match="holds symbolic links"),
            OutputFolder(output).claim(),
        ):
            pytest.fail("claimed through a link")
        assert victim.read_bytes() == VICTIM
        assert not (tmp_path / "missing").exists()


def test_a_link_planted_at_the_lock_is_refused_and_its_target_untouched(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    victim = _victim(tmp_path)
    output = tmp_path / "out"
    output.mkdir()
    (output / ".lock").symlink_to(victim)
    result = tensor_cli("train", str(write_run(tmp_path / "run.yaml", run_data(demo_zarr, output))))
    assert result.returncode == 1, result.stderr
    assert victim.read_bytes() == VICTIM
    assert f"holds symbolic links, which this tool never creates: {output / '.lock'} -> " in (
        result.stderr
    )
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in output.iterdir()) == [".lock"]  # nothing written
    assert (output / ".lock").is_symlink()  # not removed either: the user decides


@pytest.mark.parametrize(
    "planted",
    [
        "run_config.json",
        "stats.jsonl",
        "stats.jsonl.damaged",
        "loss.png",
        "checkpoints/iteration_00000004.pt.sha256",
        "checkpoints/iteration_00000008.pt",
        "snapshots/00000008.png",
        "snapshots.zarr/8/",  # a folder the run will write into
        "tensorboard/",
    ],
)
def test_a_link_planted_at_any_name_the_run_writes_is_refused_before_writing(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path, planted: str
) -> None:
    victim = _victim(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    output = tmp_path / "out"
    data = {**run_data(demo_zarr, output, snapshot_interval=4), "num_iterations": 4}
    assert tensor_cli("train", str(write_run(tmp_path / "a.yaml", data))).returncode == 0
    link = output / planted.rstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(elsewhere if planted.endswith("/") else victim)
    before = {p: p.stat().st_mtime_ns for p in output.rglob("*") if not p.is_symlink()}
    longer = write_run(tmp_path / "b.yaml", {**data, "num_iterations": 12, "tensorboard": True})
    result = tensor_cli("train", str(longer))
    assert result.returncode == 1, result.stderr
    assert f"holds symbolic links, which this tool never creates: {link} -> " in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert victim.read_bytes() == VICTIM
    assert list(elsewhere.iterdir()) == []
    after = {p: p.stat().st_mtime_ns for p in output.rglob("*") if not p.is_symlink()}
    assert after == before  # nothing in the folder was rewritten


def test_links_planted_while_the_run_trains_are_replaced_never_followed(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    victim = _victim(tmp_path)
    output = tmp_path / "out"
    data = run_data(demo_zarr, output, step_delay=0.3, snapshot_interval=4)
    training = start_training(write_run(tmp_path / "run.yaml", data), tensor_cli.env)
    wait_for_stats(output, 1, training)  # past the start's check: a race, not a pre-planted link
    planted = [
        output / "loss.png",
        output / "checkpoints" / "iteration_00000008.pt",
        output / "checkpoints" / "iteration_00000008.pt.sha256",
        output / "snapshots" / "00000007.png",  # snapshots of iterations 3, 7, 11
        output / "snapshots.zarr" / "7" / "raw" / ".zarray",
    ]
    for link in planted:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(victim)
    stderr = finish(training)
    assert training.returncode == 0, stderr
    assert victim.read_bytes() == VICTIM
    assert [link for link in planted if link.is_symlink()] == [], stderr  # each replaced


def test_a_link_at_a_temporary_name_is_refused_not_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = _victim(tmp_path)
    target = tmp_path / "out" / "run_config.json"
    target.parent.mkdir()
    # The attacker guesses the token (the pid is public): the writer must not open the link.
    monkeypatch.setattr(secrets, "token_hex", lambda _: "0badc0de")
    guessed = target.with_name(f".run_config.json.{os.getpid()}.0badc0de.tmp")
    guessed.symlink_to(victim)
    with pytest.raises(FileExistsError), atomic_writer(target) as file:
        file.write("clobbered")
    assert victim.read_bytes() == VICTIM
    assert not target.exists()
    assert guessed.is_symlink()  # the attacker's link is not the writer's to delete
    assert _atomic.planted_links(target.parent) == [guessed]
