"""``dacapo-trainers schema TYPE``: the JSON Schema of a config type (or of run files)."""

from __future__ import annotations

import argparse
import json
from typing import Any

RUN = "RunConfig"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of a config type",
        description=f"Print the JSON Schema of a config type, or of run files with {RUN}. "
        "Polymorphic fields list every installed subtype (all plugins are loaded).",
    )
    parser.add_argument("type", help=f"a type name, e.g. GunpowderTrainerConfig, or {RUN}")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._configs._run_config import RunConfig
    from .._configs._schema import json_schema
    from .._plugins._registry import default_registry

    registry = default_registry()
    cls = RunConfig if args.type == RUN else registry.get(args.type)
    registry.load_all()
    print(json.dumps(json_schema(cls, registry), indent=2))
    return 0
