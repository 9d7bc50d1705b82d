"""The ``dacapo-trainers`` command: a thin dispatcher over one module per subcommand.

Exit status: 0 success; 1 a run failed (training error, output folder in use, or an
unexpected error); 2 bad input (config, plugin, usage); 130 interrupted by SIGINT; 143 stopped
by SIGTERM. Every failure prints one paragraph to stderr, never a traceback, unless
``--debug`` (or ``DACAPO_TRAINERS_DEBUG=1``, which worker processes inherit) asks for one.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from .._errors import (
    ConfigError,
    DacapoTrainersError,
    DacapoTrainersWarning,
    PluginError,
    RunInterrupted,
    flat_message,
    raised_in,
)
from . import (
    _demo,
    _demo_data,
    _export,
    _new_plugin,
    _plugins,
    _schema,
    _show,
    _train,
    _validate,
)

#: Set to 1 for tracebacks, as ``--debug`` does (which sets it for the processes it starts).
DEBUG_VARIABLE = "DACAPO_TRAINERS_DEBUG"

SUBCOMMANDS: tuple[ModuleType, ...] = (
    _train,
    _demo,
    _demo_data,
    _validate,
    _plugins,
    _show,
    _schema,
    _new_plugin,
    _export,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="dacapo-trainers",
        description="Trainers for DaCapo-style volumetric deep learning, as plugins.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"print the traceback of a failure too (also: {DEBUG_VARIABLE}=1)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = os.environ.get(DEBUG_VARIABLE)
    if args.debug:
        os.environ[DEBUG_VARIABLE] = "1"  # for the worker processes a run may start
    try:
        return _run(args, debug=os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"))
    finally:
        if args.debug and previous is None:
            os.environ.pop(DEBUG_VARIABLE, None)


def _run(args: argparse.Namespace, debug: bool) -> int:
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.run(args))
    except (ConfigError, PluginError) as error:
        _report(error, debug, f"error: {error}")
        return 2
    except DacapoTrainersError as error:
        _report(error, debug, f"error: {error}")
        return 1
    except RunInterrupted as stopped:
        _report(stopped, debug, str(stopped))
        return stopped.exit_status
    except KeyboardInterrupt as interrupt:
        _report(interrupt, debug, "interrupted")
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (e.g. `| head`)
        sys.stderr.close()
        return 0
    except Exception as error:  # a bug: still one paragraph, the traceback on request
        message = flat_message(error)
        _report(
            error,
            debug,
            f"error: unexpected {type(error).__name__}: {message} (raised in "
            f"{raised_in(error)}). This is a bug in dacapo-trainers or in a plugin: run the "
            "command again with --debug for the traceback, and report it",
        )
        return 1


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Our warnings as one line (``warning: ...``), others as Python prints them."""
    if issubclass(category, DacapoTrainersWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr)


def _report(error: BaseException, debug: bool, message: str) -> None:
    """The traceback (with ``--debug``), the paragraph, and a plugin's own frames."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    print(message, file=sys.stderr)
    plugin_errors = [error] if isinstance(error, PluginError) else []
    if isinstance(error, ConfigError):
        plugin_errors += [i.error for i in error.issues if isinstance(i.error, PluginError)]
    for plugin_error in plugin_errors:
        cause = plugin_error.__cause__
        if cause is not None and not debug:  # the plugin's own failure: helps its author
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
