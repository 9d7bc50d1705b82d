"""Checkpoints are checksummed; a damaged one is reported, set aside (never deleted), and the
run resumes from the newest intact one. No message ever advises ``weights_only=False``.

The damage is a class of inputs: hypothesis draws truncations, flipped bytes, appended bytes
and damaged checksum files of real checkpoints; the command line is attacked with the cases
of the report (truncated, empty, 200 flipped bytes).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_helpers import CLI, run_data, stats_of, write_run

from dacapo_trainers import CheckpointError, DacapoTrainersWarning
from dacapo_trainers._outputs._checkpoints import (
    checkpoint_path,
    checksum_path,
    load_latest,
    random_states,
    save_checkpoint,
)


def _state(iteration: int) -> dict[str, object]:
    model = torch.nn.Conv3d(1, 2, 3)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 1, 4, 4, 4)).sum().backward()
    optimizer.step()
    return {
        "iteration": iteration,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "trainer": {"generator": torch.Generator().manual_seed(iteration).get_state()},
        "random": random_states(),
    }


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints")
    for iteration in (4, 8):
        save_checkpoint(checkpoint_path(folder, iteration), _state(iteration))
    return folder


@st.composite
def damage(draw: st.DrawFn, size: int) -> tuple[str, list[tuple[int, int]] | int | bytes]:
    """One way of damaging a file of ``size`` bytes that certainly changes it."""
    kind = draw(st.sampled_from(["truncate", "flip", "append", "checksum"]))
    if kind == "truncate":
        return kind, draw(st.integers(0, size - 1))
    if kind == "flip":
        offsets = draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=200, unique=True))
        return kind, [(offset, draw(st.integers(1, 255))) for offset in offsets]
    if kind == "append":
        return kind, draw(st.binary(min_size=1, max_size=64))
    return kind, draw(st.integers(0, 63))


def _apply(path: Path, kind: str, how: object) -> None:
    if kind == "checksum":
        checksum = checksum_path(path)
        text = checksum.read_text()
        assert isinstance(how, int)
        replaced = "0" if text[how] != "0" else "1"
        checksum.write_text(text[:how] + replaced + text[how + 1 :])
        return
    data = bytearray(path.read_bytes())
    if kind == "truncate":
        assert isinstance(how, int)
        data = data[:how]
    elif kind == "flip":
        assert isinstance(how, list)
        for offset, mask in how:
            data[offset] ^= mask
    else:
        assert isinstance(how, bytes)
        data += how
    path.write_bytes(bytes(data))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_damage_to_the_latest_checkpoint_falls_back_to_the_previous_one(
    two_checkpoints: Path, data: st.DataObject
) -> None:
    latest = checkpoint_path(two_checkpoints, 8)
    kind, how = data.draw(damage(latest.stat().st_size))
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "checkpoints"
        shutil.copytree(two_checkpoints, folder)
        damaged = checkpoint_path(folder, 8)
        _apply(damaged, kind, how)
        damaged_bytes = damaged.read_bytes()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            restored = load_latest(folder)
        assert restored is not None
        assert restored.path == checkpoint_path(folder, 4)
        assert restored.state["iteration"] == 4
        moved = folder / "iteration_00000008.pt.damaged"
        assert [path for path, _ in restored.set_aside] == [moved]
        assert moved.read_bytes() == damaged_bytes  # set aside, not deleted
        assert not damaged.exists()
        messages = [str(w.message) for w in caught if issubclass(w.category, DacapoTrainersWarning)]
        assert len(messages) == 1
        assert messages[0].startswith(f"checkpoint {damaged} is damaged (")
        assert "weights_only=False" not in messages[0]


def test_every_checkpoint_damaged_is_an_error_that_moves_nothing(two_checkpoints: Path) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "checkpoints"
        shutil.copytree(two_checkpoints, folder)
        checkpoint_path(folder, 4).write_bytes(b"")
        _apply(checkpoint_path(folder, 8), "truncate", 100)
        names = sorted(path.name for path in folder.iterdir())
        with pytest.raises(CheckpointError) as refused:
            load_latest(folder)
        assert sorted(path.name for path in folder.iterdir()) == names
    message = str(refused.value)
    assert message.startswith(f"no checkpoint in {folder} is intact (iteration_00000008.pt: ")
    assert "move them out of that folder to start the run over (nothing was deleted)" in message
    assert "weights_only=False" not in message


def test_an_intact_checkpoint_holding_other_objects_is_refused_without_unsafe_advice(
    tmp_path: Path,
) -> None:
    state = _state(4)
    state["trainer"] = {"options": argparse.Namespace(depth=3)}
    save_checkpoint(checkpoint_path(tmp_path, 4), state)
    with pytest.raises(CheckpointError) as refused:
        load_latest(tmp_path)
    message = str(refused.value)
    assert "holds an object of class argparse.Namespace, which the safe loader refuses" in message
    assert "state_dict() must hold only tensors, numbers, strings, lists, tuples and dicts" in (
        message
    )
    assert "weights_only=False" not in message and "set to `False`" not in message
    assert checkpoint_path(tmp_path, 4).exists()


def test_checkpoints_of_earlier_versions_without_a_checksum_still_load(tmp_path: Path) -> None:
    torch.save(_state(4), checkpoint_path(tmp_path, 4))
    restored = load_latest(tmp_path)
    assert restored is not None and restored.state["iteration"] == 4


def test_the_checksum_file_is_sha256sum_format(two_checkpoints: Path) -> None:
    import hashlib

    path = checkpoint_path(two_checkpoints, 8)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert checksum_path(path).read_text() == f"{digest}  {path.name}\n"


@pytest.mark.parametrize("attack", ["truncated", "empty", "200 flipped bytes"])
def test_the_command_resumes_from_the_previous_checkpoint_when_the_latest_is_damaged(
    attack: str, tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    data = {**run_data(demo_zarr, output), "num_iterations": 4, "checkpoint_interval": 2}
    assert tensor_cli("train", str(write_run(tmp_path / "a.yaml", data)), "--quiet").returncode == 0
    latest = output / "checkpoints" / "iteration_00000004.pt"
    if attack == "truncated":
        _apply(latest, "truncate", latest.stat().st_size // 2)
    elif attack == "empty":
        _apply(latest, "truncate", 0)
    else:
        middle = latest.stat().st_size // 2
        _apply(latest, "flip", [(middle + i, 0xFF) for i in range(200)])
    damaged = latest.read_bytes()
    longer = write_run(tmp_path / "b.yaml", {**data, "num_iterations": 6})
    result = tensor_cli("train", str(longer))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"warning: checkpoint {latest} is damaged (")
    assert result.stderr.strip().endswith(
        "it was moved aside to iteration_00000004.pt.damaged (not deleted) and the run resumes "
        "from iteration_00000002.pt"
    )
    assert "Traceback" not in result.stderr and "weights_only" not in result.stderr
    assert "trained to iteration 6 (resumed from 2)" in result.stdout
    assert [s["iteration"] for s in stats_of(output)] == list(range(6))
    assert (output / "checkpoints" / "iteration_00000004.pt.damaged").read_bytes() == damaged
    assert torch.load(latest, weights_only=True)["iteration"] == 4  # rewritten by the resume


def _file_size_limit(limit: int) -> None:
    """In the child: files may not grow past ``limit`` bytes (writes fail with EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death by SIGXFSZ


def test_a_full_disk_while_checkpointing_stops_cleanly_and_loses_nothing(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    run_file = write_run(tmp_path / "run.yaml", run_data(demo_zarr, output))
    limited = subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), "--quiet"],
        env=tensor_cli.env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _file_size_limit(20_000),  # a checkpoint takes about 40 kB
    )
    assert limited.returncode == 1, limited.stderr
    assert limited.stderr.startswith(
        "error: the run stopped at iteration 4 while writing the checkpoint of iteration 4: "
        f"cannot write to the output folder {output}: File too large. Free disk space"
    ), limited.stderr
    assert "Traceback" not in limited.stderr and len(limited.stderr.strip().splitlines()) == 1
    assert [p.name for p in (output / "checkpoints").iterdir()] == []  # no partial file left
    again = tensor_cli("train", str(run_file), "--quiet")
    assert again.returncode == 0, again.stderr
    assert [s["iteration"] for s in stats_of(output)] == list(range(12))
