"""``dacapo-trainers plugins``: every installed config type and its state, from metadata."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._plugins._config_rules import config_class_problems
from .._plugins._discovery import PluginRecord, PluginState


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed trainer and config types",
        description="List every installed config type with its distribution, version and "
        "status (ok, broken, disabled, incompatible, duplicate). Reads package metadata only: "
        "no plugin and no torch is imported, unless --check is given; a type not imported is "
        "listed as 'found', since only importing it shows whether its plugin provides it. "
        "With --check, exits 1 when a type is broken, incompatible or duplicated or its config "
        "class breaks the field rules (the conformance kit's), and warns about plugins whose "
        "selection imports a heavy module (torch, gunpowder, ...).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also import every plugin to find broken ones, config classes that break the "
        "field rules, and slow imports (exit 1 on problems)",
    )
    parser.set_defaults(run=run)


#: States that ``--check`` reports as problems (disabled is the user's own choice).
_PROBLEMS = (PluginState.BROKEN, PluginState.INCOMPATIBLE, PluginState.DUPLICATE)


def run(args: argparse.Namespace) -> int:
    from .._plugins._registry import default_registry

    registry = default_registry()
    loaded = registry.load_all() if args.check else {}
    records = registry.records()
    imported = {r.type_name for r in records if r.type_name in loaded or r.distribution is None}
    if args.json:
        rows = [{**r.as_dict(), "imported": r.type_name in imported} for r in records]
        print(json.dumps(rows, indent=2))
    else:
        print(_table(records, imported))
    if not args.check:
        return 0
    for warning in _heavy_import_warnings(records):
        print(f"warning: {warning}", file=sys.stderr)
    status = 0
    rule_problems = [p for cls in loaded.values() for p in config_class_problems(cls)]
    for problem in rule_problems:
        print(f"error: {problem}", file=sys.stderr)
    if rule_problems:
        print(
            f"{len(rule_problems)} config field problem(s); see 'Writing a config class' in "
            "the dacapo-trainers docs",
            file=sys.stderr,
        )
        status = 1
    problems = [record for record in records if record.state in _PROBLEMS]
    if problems:
        names = ", ".join(f"{r.type_name} ({r.state.value})" for r in problems)
        print(f"{len(problems)} type(s) cannot be used: {names}", file=sys.stderr)
        status = 1
    return status


def _heavy_import_warnings(records: list[PluginRecord]) -> list[str]:
    """One warning per plugin module whose selection imports a heavy module (in a child)."""
    from .._plugins._import_probe import ProbeError, heavy_imports

    warnings = []
    probed: set[tuple[str | None, str]] = set()
    for record in records:
        key = (record.distribution, record.target)
        if record.state is not PluginState.OK or record.is_builtin or key in probed:
            continue
        probed.add(key)
        try:
            found = heavy_imports(record.type_name)
        except ProbeError:
            continue  # the load itself failed: already reported as broken
        for module, frames in sorted(found.items()):
            where = frames[-1] if frames else record.target
            warnings.append(
                f"selecting {record.type_name!r} ({record.label}) imports {module}, at {where}; "
                "validate and plugins wait for it. Import it only in the trainer's module "
                "(set trainer_type to a 'package.module:Class' string) or inside functions"
            )
    return warnings


#: The status of a usable type whose plugin was not imported (metadata alone cannot tell
#: whether the plugin really provides it).
_FOUND = "found (not imported; --check imports it)"


def _status(record: PluginRecord, imported: set[str]) -> str:
    if record.state is PluginState.OK:
        return "ok" if record.is_builtin or record.type_name in imported else _FOUND
    return f"{record.state.value}: {record.error}"


def _table(records: list[PluginRecord], imported: set[str]) -> str:
    if not records:
        return "no config types installed"
    rows = [("TYPE", "DISTRIBUTION", "VERSION", "STATUS")]
    rows += [
        (r.type_name, r.distribution or "(run time)", r.version or "", _status(r, imported))
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]]
        )
        for row in rows
    )
