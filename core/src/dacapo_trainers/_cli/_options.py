"""Options that several subcommands share."""

from __future__ import annotations

import argparse


def add_set_option(parser: argparse.ArgumentParser, *, relative_to: str = "the file") -> None:
    """``--set PATH=VALUE`` (repeatable): override a field of the config before it is checked."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help=f"set a field (a dotted path from the top of {relative_to}, list items as [N], "
        "e.g. trainer_config.learning_rate=1e-4); the value is read by the field's type; "
        "repeatable",
    )
