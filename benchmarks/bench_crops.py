"""Memory and start-up of both batch trainers against the number of small labelled crops.

CellMap-style data: one zarr container of ``--crop-size``³ crops, each a uint8 raw and a
uint64 gt (a few labelled blocks), trained on as one dataset per crop; and a *whole cell*: a
512 x 1024 x 1024 uint8 raw whose chunks were never written (zarr's fill value) with one 64³
gt crop inside it. Each training runs in its own process (a small U-Net, affinities, batch
1, CPU, one torch thread); this process samples the proportional set size (PSS, from
``/proc/<pid>/smaps_rollup``) of that process and all its descendants (the gunpowder data
workers) every ``--interval`` seconds, so memory shared by forked workers counts once.

Printed per setup: the peak PSS of the process tree, the time from the process's start to the
end of its first iteration (imports, opening the arrays, preparing the batches and the first
step included), and, for the long runs, the PSS at iteration ``--flat-from``, ten iterations
before the last, and the peak of the whole run (memory must stay flat).

Usage: ``python benchmarks/bench_crops.py [--crops 1 100 1000] [--flat-iterations 2000]
[--json out.json]``. The data go to a temporary folder that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

GB = 1e9
WHOLE_CELL_SHAPE = (512, 1024, 1024)
WHOLE_CELL_CROP = 64
INPUT_SHAPE = 40  # U-Net 40³ -> 24³ (one 2x downsampling, 2 feature maps)
TRAINERS = ("gunpowder", "simple-tensor")


# -- data --------------------------------------------------------------------------------------


def labels(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """uint64 labels: 8 blocks with large ids (compresses to next to nothing)."""
    gt = np.zeros(shape, dtype=np.uint64)
    halves = [(slice(0, s // 2), slice(s // 2, s)) for s in shape]
    for number, index in enumerate(np.ndindex(2, 2, 2)):
        gt[tuple(halves[a][i] for a, i in enumerate(index))] = 2**40 + seed * 8 + number
    return gt


def write_crops(container: Path, count: int, size: int) -> None:
    """``count`` crops ``crop_<i>/raw`` (uint8) and ``crop_<i>/gt`` (uint64), ``size``³ each."""
    from dacapo_trainers import write_array

    ramp = np.add.outer(np.add.outer(np.arange(size), np.arange(size)), np.arange(size))
    for i in range(count):
        offset = (0, 0, i * size * 4)
        raw = ((ramp + i) % 251).astype(np.uint8)
        write_array(container, f"crop_{i}/raw", raw, voxel_size=(4, 4, 4), offset=offset)
        gt = labels((size,) * 3, i)
        write_array(container, f"crop_{i}/gt", gt, voxel_size=(4, 4, 4), offset=offset)


def write_whole_cell(container: Path) -> None:
    """A whole-cell raw with no chunk written and one gt crop inside it."""
    import zarr

    from dacapo_trainers import write_array

    raw = zarr.open_array(
        str(container / "raw"), mode="w", shape=WHOLE_CELL_SHAPE, chunks=(64, 64, 64), dtype="u1"
    )
    raw.attrs.update({"voxel_size": [8, 8, 8], "offset": [0, 0, 0], "axis_names": ["z", "y", "x"]})
    size = (WHOLE_CELL_CROP,) * 3
    offset = tuple(8 * (s // 2) for s in WHOLE_CELL_SHAPE)
    write_array(container, "gt", labels(size, 0), voxel_size=(8, 8, 8), offset=offset)


# -- one training, in a child process ------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """Train ``args.iterations`` iterations; say ``first`` after the first, ``at <i>`` later."""
    import torch

    from dacapo_trainers.reference import AffinitiesTaskConfig, UNetConfig, ZarrDatasetConfig

    torch.set_num_threads(1)
    if args.whole_cell:
        names = [("cell", "raw", "gt")]
    else:
        names = [(f"crop_{i}", f"crop_{i}/raw", f"crop_{i}/gt") for i in range(args.crops[0])]
    datasets = [
        ZarrDatasetConfig(name=name, container=str(args.container), raw=raw, gt=gt).build()
        for name, raw, gt in names
    ]
    architecture = UNetConfig(
        name="unet", input_shape=[INPUT_SHAPE] * 3, num_fmaps=2, downsample_factors=[[2, 2, 2]]
    )
    task = AffinitiesTaskConfig(name="affinities").build()
    torch.manual_seed(0)
    model = task.create_model(architecture.build())
    config: Any
    if args.trainer == "gunpowder":
        from dacapo_trainers_gunpowder import GunpowderTrainerConfig

        config = GunpowderTrainerConfig(
            name="bench", batch_size=1, learning_rate=1e-4, num_data_fetchers=args.fetchers
        )
    else:
        from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig

        config = SimpleTensorTrainerConfig(name="bench", batch_size=1, learning_rate=1e-4)
    trainer = config.build_trainer()
    trainer.seed = 0
    optimizer = trainer.create_optimizer(model)
    trainer.build_batch_provider(datasets, model, task)
    with trainer:
        for i, _ in enumerate(trainer.iterate(args.iterations, model, optimizer, "cpu")):
            if i == 0:
                print("first", flush=True)
            elif i + 1 in (args.flat_from, _late(args.iterations)):
                print("at", i + 1, flush=True)
    print("done", flush=True)


def _late(iterations: int) -> int:
    """The late iteration memory is compared at: a few before the last, while the workers
    still run (after the last one the trainer closes them)."""
    return max(iterations - 10, 1)


# -- measuring ----------------------------------------------------------------------------------


def tree_pss(root: int) -> int:
    """PSS (bytes) of ``root`` and every descendant alive now."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def measure(command: list[str], interval: float) -> dict[str, Any]:
    """Run ``command``; its tree's peak PSS, time to ``first``, PSS at each ``at`` line."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak, current = 0, 0
    events: dict[str, Any] = {"at": {}}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            words = line.split()
            if words and words[0] == "first":
                events["first"] = time.perf_counter() - start
            elif words and words[0] == "at":
                events["at"][int(words[1])] = tree_pss(process.pid)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while process.poll() is None:
        current = tree_pss(process.pid)
        peak = max(peak, current)
        time.sleep(interval)
    reader.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    return {"peak_pss_gb": peak / GB, "first_iteration_s": events.get("first"), **events}


def run(args: argparse.Namespace, trainer: str, container: Path, **options: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--trainer", trainer]
    command += ["--container", str(container), "--fetchers", str(options.get("fetchers", 2))]
    for name in ("crops", "iterations", "flat_from"):
        if name in options:
            command += [f"--{name.replace('_', '-')}", str(options[name])]
    if options.get("whole_cell"):
        command.append("--whole-cell")
    result = measure(command, args.interval)
    at = {int(k): v / GB for k, v in result.pop("at").items()}
    if at:
        result["pss_at_gb"] = at
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, nargs="*", default=[1, 100, 1000])
    parser.add_argument("--crop-size", type=int, default=48)
    parser.add_argument("--iterations", type=int, default=3, help="per crop-count run")
    parser.add_argument("--flat-iterations", type=int, default=2000, help="0: skip")
    parser.add_argument("--flat-from", type=int, default=200)
    parser.add_argument("--trainers", nargs="*", choices=TRAINERS, default=list(TRAINERS))
    parser.add_argument("--no-whole-cell", action="store_true")
    parser.add_argument("--interval", type=float, default=0.1, help="PSS sampling (s)")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trainer", choices=TRAINERS, help=argparse.SUPPRESS)
    parser.add_argument("--container", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fetchers", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--whole-cell", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        child(args)
        return {}
    workdir = Path(tempfile.mkdtemp(prefix="bench_crops_"))
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("torch", "gunpowder", "zarr", "numpy")},
        "crops": {},
    }
    print(f"versions: python {results['python']}, {results['versions']}")
    try:
        crops = workdir / "crops.zarr"
        if args.crops:
            write_crops(crops, max(args.crops), args.crop_size)
        print(f"{'crops':>6} | {'gunpowder (2 fetchers)':>24} | {'simple-tensor':>20}")
        for count in args.crops:
            row = {
                trainer: run(args, trainer, crops, crops=count, iterations=args.iterations)
                for trainer in args.trainers
            }
            results["crops"][count] = row
            cells = [
                f"{row[t]['peak_pss_gb']:.2f} GB / {row[t]['first_iteration_s']:.1f} s"
                if t in row
                else "-"
                for t in TRAINERS
            ]
            print(f"{count:>6} | {cells[0]:>24} | {cells[1]:>20}", flush=True)
        if not args.no_whole_cell:
            cell = workdir / "cell.zarr"
            write_whole_cell(cell)
            results["whole_cell"] = {
                trainer: run(args, trainer, cell, fetchers=1, whole_cell=True, iterations=3)
                for trainer in args.trainers
            }
            for trainer, figures in results["whole_cell"].items():
                print(
                    f"whole cell {WHOLE_CELL_SHAPE} uint8 raw, one {WHOLE_CELL_CROP}³ gt, "
                    f"{trainer}{' (1 fetcher)' if trainer == 'gunpowder' else ''}: peak "
                    f"{figures['peak_pss_gb']:.2f} GB, first iteration "
                    f"{figures['first_iteration_s']:.1f} s",
                    flush=True,
                )
        if args.flat_iterations and args.crops:
            count = max(args.crops)
            results["flat"] = {}
            for trainer in args.trainers:
                figures = run(
                    args,
                    trainer,
                    crops,
                    crops=count,
                    iterations=args.flat_iterations,
                    flat_from=args.flat_from,
                )
                results["flat"][trainer] = figures
                at, late = figures["pss_at_gb"], _late(args.flat_iterations)
                print(
                    f"{count} crops, {trainer}: PSS {at[args.flat_from]:.3f} GB at iteration "
                    f"{args.flat_from}, {at[late]:.3f} GB at {late}; peak over "
                    f"{args.flat_iterations} iterations {figures['peak_pss_gb']:.3f} GB",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
