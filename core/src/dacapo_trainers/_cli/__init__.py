"""The ``dacapo-trainers`` command: a thin dispatcher over one module per subcommand.

Exit status: 0 success; 1 a run failed (training error); 2 bad input (config, plugin, usage);
130 interrupted. Expected failures print one paragraph to stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from .._errors import ConfigError, DacapoTrainersError, PluginError
from . import _demo, _demo_data, _new_plugin, _plugins, _schema, _show, _train, _validate

SUBCOMMANDS: tuple[ModuleType, ...] = (
    _train,
    _demo,
    _demo_data,
    _validate,
    _plugins,
    _show,
    _schema,
    _new_plugin,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="dacapo-trainers",
        description="Trainers for DaCapo-style volumetric deep learning, as plugins.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, PluginError) as error:
        _print_error(error)
        return 2
    except DacapoTrainersError as error:
        _print_error(error)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (e.g. `| head`)
        sys.stderr.close()
        return 0


def _print_error(error: BaseException) -> None:
    print(f"error: {error}", file=sys.stderr)
    plugin_errors = [error] if isinstance(error, PluginError) else []
    if isinstance(error, ConfigError):
        plugin_errors += [i.error for i in error.issues if isinstance(i.error, PluginError)]
    for plugin_error in plugin_errors:
        cause = plugin_error.__cause__
        if cause is not None:  # the plugin's own failure: where it happened helps its author
            print(_plugin_frames(cause), file=sys.stderr)


def _plugin_frames(cause: BaseException) -> str:
    """The cause and the frames of the plugin's code (ours and importlib's left out)."""
    ours = str(Path(__file__).resolve().parents[1])
    frames = [
        frame
        for frame in traceback.extract_tb(cause.__traceback__)
        if not frame.filename.startswith((ours, "<frozen"))
        and "importlib" not in frame.filename
        and "pluggy" not in frame.filename
    ]
    where = "".join(traceback.format_list(frames)).rstrip()
    summary = f"caused by {type(cause).__name__}: {cause}"
    return f"{summary}\n{where}" if where else summary
