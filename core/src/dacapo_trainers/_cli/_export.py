"""``dacapo-trainers export RUN --FORMAT DESTINATION``: a run's weights for another tool.

One format flag per call (the group below is required and mutually exclusive); each format is
one entry of :data:`FORMATS`, whose handler gets the parsed arguments and returns the path it
wrote.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs


@attrs.define(frozen=True)
class ExportFormat:
    """A format flag of ``export``: ``--<flag> <metavar>``, and what writes it."""

    flag: str
    metavar: str
    help: str
    write: Callable[[argparse.Namespace], Path]


def _write_dacapo(args: argparse.Namespace) -> Path:
    from .._exports._dacapo_export import export_dacapo

    return export_dacapo(
        Path(args.source),
        Path(args.dacapo).expanduser(),
        iteration=args.iteration,
        run_name=args.run_name,
    )


FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat(
        "dacapo",
        "RUNS_BASE_DIR",
        "DaCapo 0.3.5's weights store: writes RUNS_BASE_DIR/<run name>/checkpoints/"
        "iterations/<iteration>, which DaCapo's LocalWeightsStore loads into its model (give "
        "DaCapo's runs_base_dir)",
        _write_dacapo,
    ),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a run's weights for another tool (DaCapo)",
        description="Write the weights of a run's checkpoint (default: the latest) in another "
        "tool's format. Nothing existing is overwritten.",
    )
    parser.add_argument("source", metavar="RUN", help="a run's output folder, or its run file")
    parser.add_argument(
        "--iteration",
        type=int,
        metavar="N",
        help="the checkpoint of N iterations (default: latest)",
    )
    parser.add_argument(
        "--run-name",
        metavar="NAME",
        help="the run's name in the other tool (default: the run's name)",
    )
    formats = parser.add_mutually_exclusive_group(required=True)
    for export_format in FORMATS:
        formats.add_argument(
            f"--{export_format.flag}", metavar=export_format.metavar, help=export_format.help
        )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    chosen = next(f for f in FORMATS if getattr(args, f.flag.replace("-", "_")) is not None)
    written = chosen.write(args)
    print(f"wrote {written}")
    return 0
