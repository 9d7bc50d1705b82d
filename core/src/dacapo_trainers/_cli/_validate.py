"""``dacapo-trainers validate FILE``: structure a config or run file; print it normalized."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._options import add_set_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a config or run file",
        description="Structure a trainer (or any tagged) config, or a run config, through the "
        "registry. Prints the normalized config as JSON and exits 0; on bad input prints the "
        "problems and exits 2.",
    )
    parser.add_argument("file", help="a .yaml/.yml, .json or .toml file")
    parser.add_argument(
        "--inputs",
        action="store_true",
        help="for a run file: also do what train does before it writes anything: build the "
        "trainer, open the datasets, ask the trainer whether it can train on them, build the "
        "task and the model, and compare with the run in the output folder (imports torch and "
        "the plugins; writes nothing)",
    )
    add_set_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._configs._converter import unstructure_config
    from .._configs._loading import load_config
    from .._configs._run_config import RunConfig
    from .._errors import ConfigError, ConfigIssue

    config = load_config(args.file, overrides=args.overrides)
    if args.inputs:
        if not isinstance(config, RunConfig):
            raise ConfigError([ConfigIssue("$", "--inputs checks run files; this is a config")])
        from .._run._driver import check_inputs

        check_inputs(config, source=args.file)
    print(json.dumps(unstructure_config(config), indent=2))
    return 0
