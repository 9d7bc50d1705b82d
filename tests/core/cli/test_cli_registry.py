"""Every command of the CLI uses the one process-wide ``default_registry()``: one discovery of
the installed plugins per process, whatever the commands do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from dacapo_trainers.testing import tiny_run_data

SCRIPT = """
import contextlib, io, json, sys
from dacapo_trainers._plugins import _registry
from dacapo_trainers._cli import main

built = []
original = _registry.Registry.__init__

def counting(self, *args, **kwargs):
    built.append(kwargs)
    original(self, *args, **kwargs)

_registry.Registry.__init__ = counting
statuses = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()):
        statuses.append(main(argv))
print(json.dumps({"statuses": statuses, "registries": len(built)}))
"""


def test_the_commands_share_one_registry(tmp_path: Path, demo_zarr: Path) -> None:
    dummy = {"__type__": "DummyTrainerConfig", "name": "dummy", "batch_size": 1}
    trainer = {**dummy, "learning_rate": 1e-4, "mirror_augment": False}
    run = tiny_run_data(trainer, demo_zarr, tmp_path / "out", name="one-registry")
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(run))
    commands = [
        ["plugins"],
        ["show", "UNetConfig"],
        ["schema", "UNetConfig"],
        ["validate", str(run_file)],
        ["validate", "--inputs", str(run_file)],
        ["train", "--quiet", str(run_file)],
    ]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"statuses": [0] * len(commands), "registries": 1}, result.stderr
