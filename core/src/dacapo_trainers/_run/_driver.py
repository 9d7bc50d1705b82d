"""The training driver: from a run config to checkpoints, stats, snapshots and a loss curve.

Order of work (the Trainer contract's life cycle, plus resume); nothing is written to the
output folder before step 3::

    1. read the run config; trainer = run.trainer_config.build_trainer()
    2. open and check the inputs (_run_inputs): seed everything; datasets;
       trainer.cannot_train_reason(datasets); device; architecture, task, model;
       trainer.cannot_train_model_reason(datasets, model, task)
    3. claim the output folder (_output_folder): create and lock it, remove what killed
       writers left, refuse a different run in it, write run_config.json; only where
       trainer.is_output_process and no parent process holds the folder for this one
    4. trainer.launch_run(RunLaunch)   -> a launcher stops here (its workers run steps 1-6)
    5. optimizer; trainer.build_batch_provider(datasets, model, task, <output>/snapshots.zarr);
       restore the newest intact checkpoint (model, optimizer, trainer state, RNG states)
    6. with trainer: iterate, hooks, checkpoints every checkpoint_interval and at the end

SIGINT and SIGTERM stop the run as :mod:`._signals` describes; any other failure during
training becomes a :class:`TrainingFailedError` saying where, with every checkpoint kept.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import attrs

from .._configs._converter import ConfigConverter
from .._configs._loading import load_config
from .._configs._run_config import RunConfig
from .._contract._trainer import RunLaunch
from .._errors import DacapoTrainersError
from .._outputs._checkpoints import iteration_of, latest_checkpoint
from .._outputs._observers import check_run_observers
from .._outputs._output_folder import RUN_CONFIG_COPY, OutputFolder
from .._plugins._registry import Registry, default_registry
from ._run_inputs import build_trainer, open_inputs
from ._signals import stop_requests
from ._training_loop import TrainingLoop
from ._training_loop import TrainResult as TrainResult


def output_folder(run: RunConfig) -> Path:
    """The run's output directory: ``output``, or ``runs/<name>`` (relative to the cwd)."""
    return Path(run.output) if run.output is not None else Path("runs") / run.name


def train(
    run: RunConfig | str | Path,
    *,
    registry: Registry | None = None,
    observers: Iterable[object] = (),
    quiet: bool = False,
    overrides: Sequence[str] = (),
) -> TrainResult:
    """Train (or resume) a run; the Python twin of ``dacapo-trainers train RUN_FILE``.

    Re-running the same run resumes from its newest intact checkpoint. While it runs, this
    process holds the output folder's lock, and SIGINT/SIGTERM stop it cleanly (see
    :doc:`/runs`).

    :param observers: extra lifecycle-hook implementations (loggers) for this run.
    :param overrides: ``PATH=VALUE`` settings for a run file (``--set`` on the command line);
        the run records the config they make.
    :raises ConfigError: bad run file or inputs (datasets, model), or an output folder
        holding a different run.
    :raises CannotTrainError: the trainer refused the datasets.
    :raises OutputFolderError: the output folder cannot be used (``OutputLockedError``:
        another training holds it).
    :raises CheckpointError: no checkpoint of the run is intact.
    :raises NonFiniteLossError: the loss became NaN/inf; the last good checkpoint is kept.
    :raises TrainingFailedError: something else raised during training; checkpoints are kept.
    :raises RunInterrupted: SIGINT or SIGTERM stopped the run.
    """
    registry = registry if registry is not None else default_registry()
    source = None
    if not isinstance(run, RunConfig):
        source = str(run)
        run = load_config(run, RunConfig, registry=registry, overrides=overrides)
    elif overrides:
        raise TypeError("overrides apply to a run file; change a RunConfig with attrs.evolve")
    check_run_observers(run)
    converter = ConfigConverter(registry)
    run = attrs.evolve(run, output=output_folder(run).resolve())
    folder = OutputFolder(Path(str(run.output)))
    current = converter.unstructure(run)
    canonical = functools.partial(canonical_run_data, converter=converter)
    folder.check_same_run(current, source, canonical)  # before the slow part; again when locked
    with stop_requests(quiet) as stop:
        trainer = build_trainer(run, registry, source)
        try:
            inputs = open_inputs(run, trainer, registry, source)
            # The process that writes (or launches the workers that write) owns the folder;
            # a launched worker writes under its launcher's lock, other ranks write nothing.
            owner = trainer.is_output_process and not folder.held_by_parent()
            with folder.claim() if owner else nullcontext():
                if owner:
                    folder.refuse_planted_links()
                    folder.check_same_run(current, source, canonical)
                    folder.remove_temporaries()
                    folder.write_run_config(current)
                before = latest_checkpoint(folder.checkpoints)
                with _run_file(folder, current, owner) as run_file:
                    launch = RunLaunch(current, run_file, folder.path, owner, quiet)
                    status = trainer.launch_run(launch)
                if status is None:  # this process trains (the loop closes the trainer)
                    loop = TrainingLoop(run, trainer, inputs, registry, observers, quiet, stop)
                    return loop.execute()
        except BaseException:
            trainer.close()
            raise
        trainer.close()
    last = latest_checkpoint(folder.checkpoints)
    return TrainResult(
        folder.path,
        iteration_of(last) if last else 0,
        iteration_of(before) if before else 0,
        last,
        worker_status=status,
    )


@contextmanager
def _run_file(folder: OutputFolder, data: Any, claimed: bool) -> Iterator[Path]:
    """A file holding the run for the workers a launcher starts: the folder's
    ``run_config.json`` where this process claimed the folder (and wrote it), else a private
    copy, removed when the block ends (the folder's copy is the lock holder's to write)."""
    if claimed:
        yield folder.run_copy
        return
    with tempfile.TemporaryDirectory(prefix="dacapo-trainers-run-") as directory:
        path = Path(directory) / RUN_CONFIG_COPY
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        yield path


def canonical_run_data(data: Any, converter: ConfigConverter) -> Any:
    """Stored run data as this version writes it: defaults of fields added since filled in.

    Data that no longer structures (a plugin gone, a field removed) is compared as stored.
    """
    try:
        run = converter.structure(data, RunConfig)
    except DacapoTrainersError:
        return data
    return json.loads(json.dumps(converter.unstructure(run)))


def check_inputs(
    run: RunConfig, *, registry: Registry | None = None, source: str | None = None
) -> None:
    """Do what :func:`train` does before it writes anything, and write nothing: build the
    trainer, open and check the inputs, compare with the run in the output folder.

    :raises ConfigError: as :func:`train` would (datasets, model, a different run).
    :raises CannotTrainError: the trainer refused the datasets.
    """
    registry = registry if registry is not None else default_registry()
    check_run_observers(run)
    run = attrs.evolve(run, output=output_folder(run).resolve())
    converter = ConfigConverter(registry)
    canonical = functools.partial(canonical_run_data, converter=converter)
    OutputFolder(Path(str(run.output))).check_same_run(
        converter.unstructure(run), source, canonical
    )
    trainer = build_trainer(run, registry, source)
    try:
        open_inputs(run, trainer, registry, source)
    finally:
        trainer.close()
