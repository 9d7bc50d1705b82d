"""Regenerate docs/_static/demo-snapshot.png from a real demo run (``nox -s demo-preview``).

Trains the demo (``dacapo-trainers demo``, 300 iterations of the simple-tensor trainer by
default) in a temporary folder, or in ``--output`` (a finished run there is reused: the demo
resumes, with nothing left to do), and draws the preview of its last snapshot, as the run draws
``snapshots/ITERATION.png``, to ``docs/_static/demo-snapshot.png``, where the README and
docs/runs.rst show it. Needs the core and the trainer's plugin installed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import zarr

from dacapo_trainers import ZarrContainer
from dacapo_trainers._outputs._previews import (
    write_preview,  # what the runs draw their previews with
)

TARGET = Path(__file__).resolve().parent / "_static" / "demo-snapshot.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainer", default="SimpleTensorTrainerConfig")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--output", type=Path, help="keep the run here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dacapo-trainers-demo-") as temporary:
        output = args.output or Path(temporary) / "demo"
        command = [sys.executable, "-m", "dacapo_trainers", "demo", "--output", str(output)]
        command += ["--trainer", args.trainer, "--iterations", str(args.iterations), "--quiet"]
        subprocess.run(command, check=True)
        snapshots = zarr.open_group(str(output / "snapshots.zarr"), mode="r")
        iterations = sorted(int(name) for name in snapshots.group_keys())
        if not iterations:
            print(f"the demo run in {output} wrote no snapshot", file=sys.stderr)
            return 1
        container = ZarrContainer(output / "snapshots.zarr")
        write_preview(container, iterations[-1], TARGET)
        print(f"snapshot {iterations[-1]} of {output} -> {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
