"""``dacapo-trainers new-plugin NAME``: write a complete, working trainer plugin package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "new-plugin",
        help="write a new trainer plugin package (config, trainer, entry point, tests)",
        description="Write a plugin package NAME: pyproject.toml (entry point in the group "
        "dacapo_trainers, a dependency on this core's version range), a config class, a "
        "minimal in-memory trainer, tests running the conformance kit, and a README. NAME is "
        "the distribution name (e.g. my-trainer: module my_trainer, type MyTrainerConfig); "
        "--type-name chooses the type name (the config class) instead. With --base TYPE "
        "(any installed trainer config type, e.g. GunpowderTrainerConfig) the config "
        "subclasses TYPE and the trainer subclasses TYPE's trainer, instead of the in-memory "
        "trainer.",
    )
    parser.add_argument("name", help="the distribution name, e.g. my-trainer")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="the folder to write the package into (default: ./NAME); must be new or empty",
    )
    parser.add_argument(
        "--type-name",
        default=None,
        metavar="TypeNameConfig",
        help="the config class and type name run files select, a CamelCase name ending in "
        "Config (default: from NAME, e.g. MyTrainerConfig); the trainer class is it without "
        "Config, ending in Trainer",
    )
    parser.add_argument(
        "--base",
        default=None,
        metavar="TrainerConfigType",
        help="derive from this installed trainer config type (e.g. GunpowderTrainerConfig): "
        "the package's config subclasses it, its trainer subclasses that type's trainer, and "
        "it depends on the base's distribution",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._scaffold import PluginNames, ScaffoldError, write_plugin

    destination = args.dir if args.dir is not None else Path(args.name)
    try:
        written = write_plugin(args.name, destination, type_name=args.type_name, base=args.base)
    except ScaffoldError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = PluginNames.from_name(args.name, args.type_name)
    print(f"wrote {names.distribution} ({len(written)} files) to {destination}:")
    for path in written:
        print(f"  {path.relative_to(destination)}")
    print(
        f"\nnext:\n  cd {destination}\n  pip install -e '.[test]'\n  pytest\n"
        f"  dacapo-trainers plugins --check   # lists {names.config_class}, state ok"
    )
    return 0
