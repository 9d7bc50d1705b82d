"""``dacapo-trainers demo``: make demo data and train on it, from an installed trainer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train a small U-Net on synthetic data",
        description="Write synthetic demo data, a run file and train it: checkpoints, "
        "snapshots, stats.jsonl and loss.png land in the output folder. Re-running resumes.",
    )
    parser.add_argument("--trainer", default="SimpleTensorTrainerConfig", help="trainer type")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--output", type=Path, default=Path("runs/demo"))
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._run._driver import train
    from ._demo_setup import prepare_demo
    from ._train import report

    run_file = prepare_demo(args.trainer, args.iterations, args.output.resolve())
    if not args.quiet:
        print(f"demo run file: {run_file}")
    result = train(run_file, quiet=args.quiet)
    report(result, args.quiet)
    if result.worker_status:
        return result.worker_status
    if not args.quiet:
        print(f"loss curve: {result.output / 'loss.png'}")
    return 0
