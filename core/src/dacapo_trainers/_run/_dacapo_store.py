"""Where DaCapo 0.3.5 keeps a run's weights, found as DaCapo finds them (no DaCapo needed).

DaCapo's ``LocalWeightsStore`` writes ``<runs_base_dir>/<run>/checkpoints/iterations/<i>``
(``<i>`` the number of completed iterations, unpadded), and its best weights per validation
dataset and criterion as ``checkpoints/<dataset>/<criterion>`` (a link to an iteration's file).
Its "latest iteration" is the largest number in ``iterations/``.

``runs_base_dir`` comes from DaCapo's options file, the first that exists of:
``$DACAPO_OPTIONS_FILE``, ``./dacapo.yaml``, ``~/dacapo.yaml``,
``~/.config/dacapo/dacapo.yaml`` (DaCapo also reads a ``dacapo.yaml`` beside its own
installation, which cannot be found without importing DaCapo); without one, ``~/dacapo``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

#: The folder of a DaCapo run that holds the weights of each stored iteration.
ITERATIONS = Path("checkpoints") / "iterations"
OPTIONS_VARIABLE = "DACAPO_OPTIONS_FILE"
DEFAULT_RUNS_BASE_DIR = "~/dacapo"


class DacapoStoreError(ValueError):
    """A DaCapo options file or run folder that cannot be used (one paragraph)."""


def is_dacapo_run_folder(folder: Path) -> bool:
    """Whether ``folder`` is a DaCapo run folder (it has ``checkpoints/iterations/``)."""
    return (folder / ITERATIONS).is_dir()


def options_file() -> Path | None:
    """DaCapo's options file: the first of its candidates that exists (module docstring)."""
    candidates = []
    if OPTIONS_VARIABLE in os.environ:  # set but missing: DaCapo goes on to the next
        candidates.append(Path(os.environ[OPTIONS_VARIABLE]))
    candidates += [
        Path("dacapo.yaml"),
        Path("~/dacapo.yaml").expanduser(),
        Path("~/.config/dacapo/dacapo.yaml").expanduser(),
    ]
    return next((path for path in candidates if path.is_file()), None)


@attrs.define(frozen=True)
class RunsBaseDir:
    """DaCapo's ``runs_base_dir`` and where it came from (for messages)."""

    path: Path
    source: str


def runs_base_dir() -> RunsBaseDir:
    """DaCapo's ``runs_base_dir``, read from its options file as DaCapo reads it.

    :raises DacapoStoreError: the options file is not YAML, not a mapping, or names a
        ``runs_base_dir`` that is not a local path.
    """
    import yaml

    path = options_file()
    if path is None:
        return RunsBaseDir(
            Path(DEFAULT_RUNS_BASE_DIR).expanduser(),
            f"DaCapo's default {DEFAULT_RUNS_BASE_DIR} (no DaCapo options file found)",
        )
    try:
        options: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DacapoStoreError(
            f"DaCapo's options file {path} cannot be read ({type(error).__name__}); fix it, "
            f"or point {OPTIONS_VARIABLE} at another one"
        ) from None
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise DacapoStoreError(
            f"DaCapo's options file {path} holds a {type(options).__name__}, not a mapping of "
            "options such as 'runs_base_dir: /path/to/runs'"
        )
    base = options.get("runs_base_dir", DEFAULT_RUNS_BASE_DIR)
    if not isinstance(base, str) or not base or "://" in base:
        raise DacapoStoreError(
            f"runs_base_dir {base!r} in DaCapo's options file {path} is not a local folder; "
            "dacapo-trainers reads DaCapo weights from local (or mounted) folders only"
        )
    return RunsBaseDir(Path(base).expanduser(), f"runs_base_dir of {path}")


def iterations(folder: Path) -> list[int]:
    """The iterations a DaCapo run folder holds weights of, in increasing order."""
    stored = folder / ITERATIONS
    if not stored.is_dir():
        return []
    return sorted(int(p.name) for p in stored.iterdir() if p.name.isdigit() and p.is_file())


def best_weights(folder: Path) -> list[str]:
    """The ``<dataset>/<criterion>`` best weights DaCapo stored in a run folder."""
    checkpoints = folder / "checkpoints"
    return sorted(
        f"{dataset.name}/{weights.name}"
        for dataset in checkpoints.iterdir()
        if dataset.is_dir() and dataset.name != "iterations"
        for weights in dataset.iterdir()
        if weights.is_file() and weights.suffix != ".json"
    )


def weights_file(folder: Path, criterion: str) -> Path:
    """The weights file of a DaCapo run folder that ``criterion`` selects.

    ``latest`` (the largest stored iteration, DaCapo's ``latest_iteration``), an iteration
    number, or ``<dataset>/<criterion>`` for best weights DaCapo stored (DaCapo's start reads
    ``checkpoints/<criterion>`` before ``checkpoints/iterations/<criterion>``).

    :raises DacapoStoreError: nothing stored under that criterion; the message lists what is.
    """
    stored = iterations(folder)
    criterion = criterion.strip()
    if criterion == "latest" and stored:
        return folder / ITERATIONS / str(stored[-1])
    if criterion.isdigit() and int(criterion) in stored:
        return folder / ITERATIONS / str(int(criterion))
    parts = Path(criterion).parts
    if len(parts) == 2 and ".." not in parts and not Path(criterion).is_absolute():
        best = folder / "checkpoints" / criterion
        if best.is_file():
            return best
    held = ", ".join(str(i) for i in stored) if stored else "none"
    best_held = ", ".join(best_weights(folder)) or "none"
    if criterion == "latest" or criterion.isdigit():
        what = f"no weights of iteration {criterion}" if criterion.isdigit() else "no weights"
        raise DacapoStoreError(
            f"DaCapo run {folder} holds {what} in {ITERATIONS}/ (iterations held: {held}); "
            "pick one of those"
        )
    raise DacapoStoreError(
        f"criterion {criterion!r} selects no weights of DaCapo run {folder}: DaCapo's "
        "validation criteria (such as 'voi') pick best weights by validation scores, which "
        "dacapo-trainers does not compute. Use 'latest' or an iteration number (iterations "
        f"held: {held}), or best weights DaCapo stored, as '<dataset>/<criterion>' "
        f"(held: {best_held})"
    )
