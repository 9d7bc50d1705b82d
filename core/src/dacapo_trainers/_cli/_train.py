"""``dacapo-trainers train RUN_FILE``: train a run, or resume it from its last checkpoint."""

from __future__ import annotations

import argparse
from typing import Any

from ._options import add_set_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train (or resume) a run from a run file",
        description="Train the run a run file describes. Outputs go to the run's output "
        "folder (default runs/<name>): stats.jsonl, checkpoints/, snapshots.zarr, loss.png and "
        "a copy of the run config. Running it again resumes from the last checkpoint. While it "
        "runs, the output folder is locked; SIGINT or SIGTERM stop it after the current "
        "iteration with a checkpoint (a second one at once).",
    )
    parser.add_argument("run_file", help="a run file (.yaml/.yml, .json or .toml)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_set_option(parser, relative_to="the run file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._run._driver import train

    result = train(args.run_file, quiet=args.quiet, overrides=args.overrides)
    report(result, args.quiet)
    return result.worker_status or 0


def report(result: Any, quiet: bool) -> None:
    """One closing line about what a run left behind (none where its workers failed)."""
    if quiet or result.worker_status:
        return
    if result.resumed_from >= result.iteration:
        print(f"nothing to do: {result.output} already holds iteration {result.iteration}")
        return
    resumed = f" (resumed from {result.resumed_from})" if result.resumed_from else ""
    print(f"trained to iteration {result.iteration}{resumed}; outputs in {result.output}")
