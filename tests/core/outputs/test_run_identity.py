"""A run's identity lives in its checkpoints too, and its folder cannot go astray mid-run.

Attacks: ``run_config.json`` deleted (or replaced) before a resume with another learning rate
and batch size; the output folder renamed while the run trains; a checkpoint of an earlier
version (no identity) of another architecture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from run_helpers import CLI, finish, run_data, start_training, wait_for_stats, write_run


def _trained(tensor_cli: CLI, demo_zarr: Path, tmp_path: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    output = tmp_path / "out"
    data = {**run_data(demo_zarr, output), "num_iterations": 4}
    assert tensor_cli("train", str(write_run(tmp_path / "a.yaml", data))).returncode == 0
    return output, data


def test_a_resume_with_another_config_is_refused_without_run_config_naming_each_field(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output, data = _trained(tensor_cli, demo_zarr, tmp_path)
    checkpoint = output / "checkpoints" / "iteration_00000004.pt"
    written = checkpoint.read_bytes()
    other = json.loads(json.dumps(data))
    other["trainer_config"].update(learning_rate=0.02, batch_size=3)
    other["num_iterations"] = 8
    copy = output / "run_config.json"
    matching = json.loads(copy.read_text())  # what the other run would have written
    matching["trainer_config"].update(learning_rate=0.02, batch_size=3)
    for replaced in (False, True):  # run_config.json deleted; made to match the other run
        copy.unlink(missing_ok=True)
        if replaced:
            copy.write_text(json.dumps(matching))
        result = tensor_cli("train", str(write_run(tmp_path / "b.yaml", other)))
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
        assert (
            "holds a run with a different trainer_config.batch_size (2 in "
            "checkpoints/iteration_00000004.pt, 3 in this config); "
            "trainer_config.learning_rate (0.01 in checkpoints/iteration_00000004.pt, 0.02 in "
            "this config); resuming it with this config would mix two runs"
        ) in " ".join(result.stderr.split()), result.stderr
        assert checkpoint.read_bytes() == written  # nothing written is lost
        assert sorted(p.name for p in checkpoint.parent.iterdir()) == [
            "iteration_00000004.pt",
            "iteration_00000004.pt.sha256",
        ]
        assert copy.exists() == replaced  # not rewritten by the refused run
    (output / "run_config.json").unlink()
    longer = write_run(tmp_path / "c.yaml", {**data, "num_iterations": 6})
    resumed = tensor_cli("train", str(longer))
    assert resumed.returncode == 0, resumed.stderr  # the same run resumes without the copy


def test_a_run_whose_folder_is_moved_mid_run_stops_naming_where_it_went(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output, moved = tmp_path / "runs" / "out", tmp_path / "elsewhere"
    output.parent.mkdir()
    data = run_data(demo_zarr, output, step_delay=0.3)
    training = start_training(write_run(tmp_path / "run.yaml", data), tensor_cli.env)
    wait_for_stats(output, 5, training)  # past the checkpoint of iteration 4
    output.rename(moved)
    stderr = finish(training)
    assert training.returncode == 1, stderr
    assert stderr.startswith(f"error: the output folder {output} was moved to {moved} while"), (
        stderr
    )
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert not (output / "checkpoints").exists()  # no second run started at the old path
    kept = sorted(p.name for p in (moved / "checkpoints").glob("*.pt"))
    assert kept and kept[0] == "iteration_00000004.pt"
    moved.rename(output)  # as the message says: move it back and resume
    again = tensor_cli("train", str(tmp_path / "run.yaml"))
    assert again.returncode == 0, again.stderr
    stats = [json.loads(line)["iteration"] for line in (output / "stats.jsonl").open()]
    assert stats == list(range(12))


def test_a_checkpoint_of_another_architecture_says_what_to_do_not_to_rerun(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    output, data = _trained(tensor_cli, demo_zarr, tmp_path)
    # A checkpoint of an earlier version: no identity in it, and no run_config.json left.
    checkpoint = output / "checkpoints" / "iteration_00000004.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["run_config"]
    torch.save(state, checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    (output / "checkpoints" / "iteration_00000004.pt.sha256").write_text(
        f"{digest}  {checkpoint.name}\n"
    )
    (output / "run_config.json").unlink()
    data["architecture_config"]["num_fmaps"] = 3
    data["num_iterations"] = 8
    result = tensor_cli("train", str(write_run(tmp_path / "b.yaml", data)))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(
        f"error: checkpoint {checkpoint} cannot be loaded into this run's model: "
    ), result.stderr
    assert "running the same command again fails alike" in result.stderr
    assert "the same command resumes" not in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == digest
