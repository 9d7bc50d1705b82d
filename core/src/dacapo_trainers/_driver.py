"""The training driver: from a run config to checkpoints, stats, snapshots and a loss curve.

Order of work (the Trainer contract's life cycle, plus resume)::

    trainer = run.trainer_config.build_trainer()
    trainer.launch(argv)        -> a launcher process stops here (e.g. torchrun workers)
    seed everything; trainer.seed = run.seed
    datasets; trainer.cannot_train_reason(datasets)  -> CannotTrainError with the reason
    model = task.predictor.create_model(architecture); optimizer = trainer.create_optimizer
    trainer.build_batch_provider(datasets, model, task, <output>/snapshots.zarr)
    restore the latest checkpoint (model, optimizer, trainer state, iteration, RNG states)
    with trainer: iterate, hooks, checkpoints every checkpoint_interval and at the end
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from ._checkpoints import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    random_states,
    restore_random_states,
    save_checkpoint,
)
from ._converter import ConfigConverter
from ._errors import CannotTrainError, ConfigError, ConfigIssue, NonFiniteLossError
from ._loading import read_config_file
from ._observers import check_run_observers, run_observers
from ._registry import Registry, default_registry
from ._run_config import RunConfig
from ._run_start import prepare_model, run_validation
from ._trainer import Trainer
from ._zarr_io import ZarrContainer

RUN_CONFIG_COPY = "run_config.json"
CHECKPOINTS = "checkpoints"
SNAPSHOTS = "snapshots.zarr"
# Keys a resumed run may change (train longer, checkpoint or validate more often, log
# elsewhere; start_config only applies to a fresh start).
_RESUMABLE_CHANGES = {
    "num_iterations",
    "checkpoint_interval",
    "device",
    "output",
    "validation_interval",
    "start_config",
    "tensorboard",
}


@attrs.define(frozen=True)
class TrainResult:
    """What a finished :func:`train` call leaves behind."""

    output: Path
    iteration: int
    resumed_from: int
    last_checkpoint: Path | None


def load_run_config(path: str | Path, registry: Registry | None = None) -> RunConfig:
    """Read and structure a run file (YAML, JSON or TOML)."""
    data = read_config_file(path)
    return ConfigConverter(registry).structure(data, RunConfig, source=str(path))


def output_folder(run: RunConfig) -> Path:
    """The run's output directory: ``output``, or ``runs/<name>`` (relative to the cwd)."""
    return Path(run.output) if run.output is not None else Path("runs") / run.name


def resolve_device(name: str) -> Any:
    """A ``torch.device`` for ``auto``/``cpu``/``mps``/``cuda``/``cuda:N``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            [ConfigIssue("$.device", f"{name!r} requested but CUDA is not available")]
        )
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    run: RunConfig | str | Path,
    *,
    registry: Registry | None = None,
    observers: Iterable[object] = (),
    quiet: bool = False,
) -> TrainResult | int:
    """Train (or resume) a run; the Python twin of ``dacapo-trainers train RUN_FILE``.

    Re-running the same run resumes from its last checkpoint. Returns a :class:`TrainResult`,
    or the workers' exit status when the trainer launched worker processes (distributed).

    :param observers: extra lifecycle-hook implementations (loggers) for this run.
    :raises ConfigError: bad run file, or an output folder holding a different run.
    :raises CannotTrainError: the trainer refused the datasets.
    :raises NonFiniteLossError: the loss became NaN/inf; the last good checkpoint is kept.
    """
    registry = registry if registry is not None else default_registry()
    if not isinstance(run, RunConfig):
        run = load_run_config(run, registry)
    check_run_observers(run)
    converter = ConfigConverter(registry)
    output = output_folder(run).resolve()
    run = attrs.evolve(run, output=output)
    trainer = run.trainer_config.build_trainer()

    run_copy = output / RUN_CONFIG_COPY
    _check_same_run(run, run_copy, converter)
    if trainer.is_output_process:
        output.mkdir(parents=True, exist_ok=True)
        _write_json(run_copy, converter.unstructure(run))
    status = trainer.launch(["train", str(run_copy)] + (["--quiet"] if quiet else []))
    if status is not None:
        return status
    return _Run(run, trainer, registry, list(observers), quiet).execute()


def _check_same_run(run: RunConfig, run_copy: Path, converter: ConfigConverter) -> None:
    if not run_copy.exists():
        return
    previous = _canonical(json.loads(run_copy.read_text()), converter)
    current = json.loads(json.dumps(converter.unstructure(run)))
    changed = sorted(
        key
        for key in set(previous) | set(current)
        if key not in _RESUMABLE_CHANGES and previous.get(key) != current.get(key)
    )
    if changed:
        raise ConfigError(
            [
                ConfigIssue(
                    f"$.{changed[0]}",
                    f"the output folder {run_copy.parent} holds a run with a different "
                    f"{', '.join(changed)}; resuming it with this config would mix two runs. "
                    "Use another output (or name), or delete that folder to start over",
                )
            ]
        )


def _canonical(data: Any, converter: ConfigConverter) -> Any:
    """Stored run data as this version writes it: defaults of fields added since filled in.

    Data that no longer structures (a plugin gone, a field removed) is compared as stored.
    """
    try:
        run = converter.structure(data, RunConfig)
    except ConfigError:
        return data
    return json.loads(json.dumps(converter.unstructure(run)))


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)


class _Run:
    """One execution of a run in this process."""

    def __init__(
        self,
        run: RunConfig,
        trainer: Trainer,
        registry: Registry,
        observers: Sequence[object],
        quiet: bool,
    ) -> None:
        self.run = run
        self.trainer = trainer
        self.output = Path(str(run.output))
        self.checkpoints = self.output / CHECKPOINTS
        self.manager = registry.plugin_manager
        self.hook = self.manager.hook
        self.observers: list[object] = list(observers)
        # Snapshots a trainer reports while producing an iteration, announced after its
        # iteration_end hook so that observers see the documented order.
        self._pending_snapshots: list[tuple[int, Any]] = []
        if trainer.is_output_process:
            self.observers = [*run_observers(run, self.output, quiet), *self.observers]

    def execute(self) -> TrainResult:
        run, trainer = self.run, self.trainer
        seed_everything(run.effective_seed)
        trainer.seed = run.effective_seed
        datasets = [config.build() for config in run.train_configs]
        reason = trainer.cannot_train_reason(datasets)
        if reason is None and not trainer.can_train(datasets):
            reason = "it gave no reason"
        if reason is not None:
            raise CannotTrainError(
                f"{type(run.trainer_config).__name__} {run.trainer_config.name!r} cannot train "
                f"on datasets {', '.join(repr(d.name) for d in run.train_configs)}: {reason}"
            )
        device = resolve_device(run.device)
        architecture = run.architecture_config.build()
        task = run.task_config.build()
        create_model = getattr(task.predictor, "create_model", None)
        model = create_model(architecture) if create_model is not None else architecture
        model = model.to(device)
        fresh = latest_checkpoint(self.checkpoints) is None
        for note in prepare_model(run, model, datasets, fresh=fresh):
            if trainer.is_output_process:
                print(f"note: {note}", file=sys.stderr)
        validation = run_validation(run, task, model) if trainer.is_output_process else None
        optimizer = trainer.create_optimizer(model)
        snapshots = ZarrContainer(self.output / SNAPSHOTS)
        try:
            trainer.build_batch_provider(datasets, model, task, snapshots)
        except ValueError as refusal:  # the trainer refuses the data it now sees with the model
            raise CannotTrainError(
                f"{type(run.trainer_config).__name__} {run.trainer_config.name!r} cannot "
                f"build its batch provider: {refusal}"
            ) from refusal
        start = self._resume(model, optimizer)
        last = latest_checkpoint(self.checkpoints)
        if start >= run.num_iterations:  # already complete: release what the build took
            trainer.close()
            return TrainResult(self.output, start, start, last)
        trainer.add_snapshot_listener(self._snapshot_written)
        for observer in self.observers:
            self.manager.register(observer)
        error: BaseException | None = None
        iteration = start
        try:
            with trainer:
                self.hook.dacapo_trainers_train_start(
                    run=run,
                    trainer=trainer,
                    model=model,
                    optimizer=optimizer,
                    start_iteration=start,
                    output=self.output,
                )
                remaining = run.num_iterations - start
                for stats in trainer.iterate(remaining, model, optimizer, device):
                    if not math.isfinite(stats.loss):
                        raise self._non_finite(stats.iteration, stats.loss)
                    iteration = stats.iteration + 1
                    self.hook.dacapo_trainers_train_iteration_end(
                        run=run, stats=stats, num_iterations=run.num_iterations
                    )
                    self._announce_snapshots()
                    if validation is not None and validation.due(iteration):
                        self.hook.dacapo_trainers_train_validation_end(
                            run=run, iteration=stats.iteration, loss=validation.loss(model, device)
                        )
                    if iteration % run.checkpoint_interval == 0 or iteration >= run.num_iterations:
                        last = self._checkpoint(iteration, model, optimizer)
                    if iteration >= run.num_iterations:
                        break
        except BaseException as caught:
            error = caught
            raise
        finally:
            try:
                self.hook.dacapo_trainers_train_end(run=run, iteration=iteration, error=error)
            finally:
                for observer in self.observers:
                    self.manager.unregister(observer)
        return TrainResult(self.output, iteration, start, last)

    def _resume(self, model: Any, optimizer: Any) -> int:
        path = latest_checkpoint(self.checkpoints)
        if path is None:
            return 0
        state = load_checkpoint(path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        self.trainer.load_state_dict(state["trainer"])
        self.trainer.iteration = int(state["iteration"])
        restore_random_states(state["random"])
        return self.trainer.iteration

    def _checkpoint(self, iteration: int, model: Any, optimizer: Any) -> Path:
        path = checkpoint_path(self.checkpoints, iteration)
        self.trainer.barrier()
        if self.trainer.is_output_process:
            save_checkpoint(
                path,
                {
                    "iteration": iteration,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "trainer": self.trainer.state_dict(),
                    "random": random_states(),
                },
            )
            self.hook.dacapo_trainers_train_checkpoint_written(
                run=self.run, iteration=iteration, path=path
            )
        self.trainer.barrier()
        return path

    def _snapshot_written(self, iteration: int, container: Any) -> None:
        self._pending_snapshots.append((iteration, container))

    def _announce_snapshots(self) -> None:
        pending, self._pending_snapshots = self._pending_snapshots, []
        for iteration, container in pending:
            self.hook.dacapo_trainers_train_snapshot_written(
                run=self.run, iteration=iteration, container=container
            )

    def _non_finite(self, iteration: int, loss: float) -> NonFiniteLossError:
        last = latest_checkpoint(self.checkpoints)
        kept = f"the last good checkpoint is kept: {last}" if last else "no checkpoint was written"
        return NonFiniteLossError(
            f"the loss became {loss} at iteration {iteration}; the run stopped and {kept}. "
            "Lower the learning rate, check the data (raw values, labels) or the task's loss, "
            "then re-run to resume from that checkpoint (or delete it to start over)"
        )
