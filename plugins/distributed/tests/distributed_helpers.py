"""Real multi-process runs: run files and the ``dacapo-trainers`` command.

A uniquely named module (not ``conftest``), so that test runs over several packages do not
import another package's helpers. Every run here is a real torchrun job on CPU with gloo: the
launcher (``dacapo-trainers train``) and two worker processes, on a tiny U-Net and a 32³ demo
volume.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from dacapo_trainers.testing import tiny_run_data

FAULTS = Path(__file__).parent / "faults"
#: Safety net for a run that should end: far above what any run here takes.
RUN_LIMIT_S = 300


def inner_config(**overrides: Any) -> dict[str, Any]:
    """A SimpleTensorTrainerConfig: SGD without warmup (a step is linear in the gradient)."""
    config: dict[str, Any] = {
        "__type__": "SimpleTensorTrainerConfig",
        "name": "simple",
        "batch_size": 1,
        "learning_rate": 0.05,
        "optimizer": "SGD",
        "warmup_iterations": 0,
    }
    config.update(overrides)
    return config


def run_data(
    output: Path,
    container: Path,
    inner: dict[str, Any],
    *,
    num_iterations: int,
    checkpoint_interval: int,
    **distributed: Any,
) -> dict[str, Any]:
    """The kit's tiny run (a 20³ U-Net with affinities on the CPU), wrapped for 2 ranks."""
    trainer = {
        "__type__": "DistributedTrainerConfig",
        "nproc_per_node": 2,
        "backend": "gloo",
        "timeout": 20.0,
        **distributed,
        "trainer_config": inner,
    }
    data = tiny_run_data(
        trainer,
        container,
        output,
        num_iterations=num_iterations,
        checkpoint_interval=checkpoint_interval,
        seed=7,
    )
    data["datasets"][0]["mask"] = "mask"  # the demo volume's mask (ones): the workers read it too
    return data


def train(
    run: dict[str, Any], folder: Path, *, pythonpath: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``dacapo-trainers train run.yaml --quiet`` in a fresh process (the launcher)."""
    run_file = folder / "run.yaml"
    run_file.write_text(yaml.safe_dump(run, sort_keys=False))
    environment = {**os.environ, **env}
    if pythonpath is not None:
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pythonpath), environment.get("PYTHONPATH", "")) if p
        )
    return subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", "train", str(run_file), "--quiet"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=RUN_LIMIT_S,
        check=False,
    )


def stats_iterations(output: Path) -> list[int]:
    """The iteration of every line of ``stats.jsonl``, in file order."""
    lines = (output / "stats.jsonl").read_text().splitlines()
    return [json.loads(line)["iteration"] for line in lines]


def load_checkpoint(output: Path, iteration: int) -> dict[str, Any]:
    path = output / "checkpoints" / f"iteration_{iteration:08d}.pt"
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found
