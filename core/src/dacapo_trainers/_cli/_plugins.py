"""``dacapo-trainers plugins``: every installed config type and its state, from metadata."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._discovery import PluginRecord, PluginState


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed trainer and config types",
        description="List every installed config type with its distribution, version and "
        "status (ok, broken, disabled, incompatible, duplicate). Reads package metadata only: "
        "no plugin and no torch is imported, unless --check is given.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also import every plugin to find broken ones (imports their modules)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._registry import Registry

    registry = Registry()
    if args.check:
        registry.load_all()
    records = registry.records()
    if args.json:
        print(json.dumps([record.as_dict() for record in records], indent=2))
    else:
        print(_table(records))
    return 0


def _status(record: PluginRecord) -> str:
    if record.state is PluginState.OK:
        return "ok"
    return f"{record.state.value}: {record.error}"


def _table(records: list[PluginRecord]) -> str:
    if not records:
        return "no config types installed"
    rows = [("TYPE", "DISTRIBUTION", "VERSION", "STATUS")]
    rows += [
        (r.type_name, r.distribution or "(run time)", r.version or "", _status(r)) for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]]
        )
        for row in rows
    )
