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
    #: Adds the format's own options (an argument group of ``export``), if it has any.
    options: Callable[[Any], None] | None = None


def _write_dacapo(args: argparse.Namespace) -> Path:
    from .._exports._dacapo_export import export_dacapo

    return export_dacapo(
        Path(args.source),
        Path(args.dacapo).expanduser(),
        iteration=args.iteration,
        run_name=args.run_name,
    )


def _write_bioimageio(args: argparse.Namespace) -> Path:
    from .._exports._bioimageio import export_bioimageio

    return export_bioimageio(
        Path(args.source),
        Path(args.bioimageio).expanduser(),
        iteration=args.iteration,
        name=args.name,
        description=args.description,
        authors=args.author or (),
        license=args.license,
        cite=args.cite or (),
    )


def _bioimageio_options(parser: Any) -> None:
    group = parser.add_argument_group("bioimage.io package (--bioimageio)")
    group.add_argument("--name", help="the model's name (default: the run's name)")
    group.add_argument(
        "--description", help="one paragraph on the model (default: what was trained on what)"
    )
    group.add_argument(
        "--author",
        action="append",
        metavar="NAME",
        help="an author of the model (required; repeat for more)",
    )
    group.add_argument(
        "--license", metavar="SPDX_ID", help="the model's license, an SPDX id (default: MIT)"
    )
    group.add_argument(
        "--cite",
        action="append",
        metavar="TEXT=DOI_OR_URL",
        help="a citation, e.g. 'My paper=10.1234/abcd' (repeat for more; default: DaCapo)",
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
    ExportFormat(
        "bioimageio",
        "PACKAGE.zip",
        "a bioimage.io model package (spec 0.5: PyTorch state dict and TorchScript weights, "
        "test tensors from the run's data, nanometre axes, the run's preview as cover); "
        "needs the bioimageio extra",
        _write_bioimageio,
        _bioimageio_options,
    ),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a run's weights for another tool (DaCapo, bioimage.io)",
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
    for export_format in FORMATS:
        if export_format.options is not None:
            export_format.options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    chosen = next(f for f in FORMATS if getattr(args, f.flag.replace("-", "_")) is not None)
    written = chosen.write(args)
    print(f"wrote {written}")
    return 0
