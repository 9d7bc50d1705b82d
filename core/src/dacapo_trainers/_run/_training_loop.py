"""The training loop of one process: from opened inputs to the last checkpoint.

Used by :func:`dacapo_trainers.train` (``_driver``) after the inputs are checked and the
output folder is claimed::

    prepare: model to the device, start weights, validation, optimizer,
             trainer.build_batch_provider(datasets, model, task, <output>/snapshots.zarr),
             restore the newest intact checkpoint (model, optimizer, trainer state, RNG states)
    train:   with trainer: train_start hooks; iterate: iteration_end (and snapshot) hooks,
             validation, checkpoints every checkpoint_interval and at the end;
             train_end hooks (always)

Each piece of work runs in a named *phase*; an unexpected error inside one becomes a
:class:`TrainingFailedError` naming the iteration, the phase and where it was raised. A first
SIGINT/SIGTERM inside the loop stops it after the step with a checkpoint (single process;
see ``_signals``).
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import attrs

from .._arrays._zarr_io import ZarrContainer
from .._configs._run_config import RunConfig
from .._contract._trainer import Trainer
from .._errors import (
    CannotTrainError,
    ChunkReadError,
    DacapoTrainersError,
    DacapoTrainersWarning,
    NonFiniteLossError,
    RunInterrupted,
    TrainingFailedError,
    flat_message,
    raised_in,
)
from .._outputs._checkpoints import (
    checkpoint_path,
    iteration_of,
    latest_checkpoint,
    load_latest,
    random_states,
    save_checkpoint,
)
from .._outputs._observers import run_observers
from .._outputs._output_folder import CHECKPOINTS
from .._outputs._run_identity import IDENTITY_KEY
from .._plugins._registry import Registry
from ._checkpoint_state import restore_checkpoint, run_identity
from ._run_failures import failure_message, interrupted, non_finite_message
from ._run_inputs import RunInputs, describe
from ._run_start import prepare_model, run_validation
from ._signals import StopRequests
from ._validation import Validation

if TYPE_CHECKING:
    import torch

    from .._contract._protocols import Model
    from .._contract._stats import TrainingIterationStats

SNAPSHOTS = "snapshots.zarr"


@attrs.define(frozen=True)
class TrainResult:
    """What a finished :func:`train` call leaves behind.

    ``iteration`` is the number of iterations completed, ``resumed_from`` the number completed
    when the call started. Where the trainer launched worker processes (distributed training),
    ``worker_status`` is their exit status (0: every worker finished) and the other fields
    describe the checkpoints the workers left; it is None where this process trained.
    """

    output: Path
    iteration: int
    resumed_from: int
    last_checkpoint: Path | None
    worker_status: int | None = None


def is_multi_process(trainer: Trainer) -> bool:
    """Whether the trainer's ranks train together (their steps need collectives to agree).

    Declared by :attr:`Trainer.world_size`; a trainer written before that declaration existed
    (it leaves ``world_size`` alone) counts as multi-process when it overrides ``barrier``.
    """
    if type(trainer).world_size is not Trainer.world_size:
        return trainer.world_size > 1
    return type(trainer).barrier is not Trainer.barrier


def _as_model(module: torch.nn.Module) -> Model:
    """The architecture's module, which is a :class:`Model` (torch types cannot say both)."""
    return cast("Model", module)


@attrs.define
class _Prepared:
    """What the preparation made: the model on its device, its optimizer, the validation,
    and the iteration the run starts from (the restored checkpoint's, or 0)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    validation: Validation | None
    start: int


class TrainingLoop:
    """One execution of a run in this process, from opened inputs to the last checkpoint."""

    def __init__(
        self,
        run: RunConfig,
        trainer: Trainer,
        inputs: RunInputs,
        registry: Registry,
        observers: Iterable[object],
        quiet: bool,
        stop: StopRequests,
    ) -> None:
        self.run = run
        self.trainer = trainer
        self.inputs = inputs
        self.registry = registry
        self.stop = stop
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
        """Prepare, then train to ``num_iterations``; the trainer is closed either way."""
        prepared = self._prepare()
        if prepared.start >= self.run.num_iterations:  # already complete
            self.trainer.close()  # release what the build took
            last = latest_checkpoint(self.checkpoints)
            return TrainResult(self.output, prepared.start, prepared.start, last)
        self.trainer.add_snapshot_listener(self._snapshot_written)
        for observer in self.observers:
            self.manager.register(observer)
        try:
            return self._train(prepared)
        finally:
            for observer in self.observers:
                self.manager.unregister(observer)

    # -- phases ------------------------------------------------------------------------------

    @contextmanager
    def _phase(self, doing: str, iteration: int) -> Iterator[None]:
        """Run the block as ``doing``: an unexpected error in it stops the run, saying so."""
        try:
            yield
        except ChunkReadError as error:  # the data's fault, but the run was under way
            raise self._failed(error, iteration, doing) from error
        except DacapoTrainersError:
            raise
        except Exception as error:
            raise self._failed(error, iteration, doing) from error

    def _prepare(self) -> _Prepared:
        """Everything before the first step; the trainer is closed when it fails."""
        try:
            return self._prepare_steps()
        except BaseException:
            self.trainer.close()
            raise

    def _prepare_steps(self) -> _Prepared:
        run, trainer, inputs = self.run, self.trainer, self.inputs
        with self._phase(f"moving the model to {inputs.device}", 0):
            model = inputs.model.to(inputs.device)
        with self._phase("preparing the model (start_config)", 0):
            fresh = latest_checkpoint(self.checkpoints) is None
            for note in prepare_model(run, model, fresh=fresh):
                if trainer.is_output_process:
                    print(f"note: {note}", file=sys.stderr)
        validation = None
        if trainer.is_output_process:
            with self._phase("opening the validation datasets", 0):
                validation = run_validation(run, inputs.task, model)
        with self._phase("creating the optimizer", 0):
            optimizer = trainer.create_optimizer(model)
        with self._phase("building the batch provider", 0):
            self._build_batch_provider(model)
        with self._phase("restoring the newest checkpoint", 0):
            start = self._resume(model, optimizer)
        return _Prepared(model, optimizer, validation, start)

    def _build_batch_provider(self, model: torch.nn.Module) -> None:
        inputs, config = self.inputs, self.run.trainer_config
        snapshots = ZarrContainer(self.output / SNAPSHOTS)
        try:
            self.trainer.build_batch_provider(
                inputs.datasets, _as_model(model), inputs.task, snapshots
            )
        except ValueError as refusal:  # the trainer refuses the data it now sees
            raise CannotTrainError(
                f"{type(config).__name__} {config.name!r} cannot build its batch provider: "
                f"{refusal}"
            ) from refusal

    def _train(self, prepared: _Prepared) -> TrainResult:
        """The steps from ``prepared.start``, with hooks and checkpoints; train_end always."""
        iteration = self.stop.iteration = prepared.start
        last = latest_checkpoint(self.checkpoints)
        error: BaseException | None = None
        try:
            with self.trainer:
                # From here a first signal is only recorded, and the run stops after a step.
                self.stop.graceful = not is_multi_process(self.trainer)
                with self._phase("calling the train_start hooks", iteration):
                    self.hook.dacapo_trainers_train_start(
                        run=self.run,
                        trainer=self.trainer,
                        model=prepared.model,
                        optimizer=prepared.optimizer,
                        start_iteration=prepared.start,
                        output=self.output,
                    )
                for stats in self._steps(prepared):
                    iteration = self.stop.iteration = stats.iteration + 1
                    last = self._after_step(stats, prepared, last)
                    if iteration >= self.run.num_iterations:
                        break
                    if self.stop.received is not None:
                        self._stop_gracefully(iteration, last, prepared)
        except RunInterrupted as stopped:
            error = stopped
            if stopped.checkpoint is not None:  # stopped gracefully: the message is complete
                raise
            error = self._interrupted(stopped.signal_number, iteration, None)
            raise error from None
        except BaseException as caught:
            error = caught
            raise
        finally:
            self.stop.graceful = False
            self._end(iteration, error)
        return TrainResult(self.output, iteration, prepared.start, last)

    def _steps(self, prepared: _Prepared) -> Iterator[TrainingIterationStats]:
        """The trainer's steps, each in its phase; a non-finite loss stops the run."""
        remaining = self.run.num_iterations - prepared.start
        model, optimizer = prepared.model, prepared.optimizer
        steps = self.trainer.iterate(remaining, _as_model(model), optimizer, self.inputs.device)
        try:
            while True:
                iteration = self.stop.iteration or 0
                with self._phase(f"the step of iteration {iteration}", iteration):
                    stats = next(steps, None)
                if stats is None:
                    return
                if not math.isfinite(stats.loss):
                    raise self._non_finite(stats.iteration, stats.loss)
                yield stats
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()

    def _after_step(
        self, stats: TrainingIterationStats, prepared: _Prepared, last: Path | None
    ) -> Path | None:
        """Hooks, validation and (when due) the checkpoint after a step; the last checkpoint."""
        run, done = self.run, stats.iteration + 1
        with self._phase(f"calling the hooks of iteration {stats.iteration}", done):
            self.hook.dacapo_trainers_train_iteration_end(
                run=run, stats=stats, num_iterations=run.num_iterations
            )
            self._announce_snapshots()
        validation = prepared.validation
        if validation is not None and validation.due(done):
            with self._phase(f"validating after iteration {stats.iteration}", done):
                loss = validation.loss(prepared.model, self.inputs.device)
                self.hook.dacapo_trainers_train_validation_end(
                    run=run, iteration=stats.iteration, loss=loss
                )
        if done % run.checkpoint_interval == 0 or done >= run.num_iterations:
            return self._checkpoint(done, prepared)
        return last

    def _end(self, iteration: int, error: BaseException | None) -> None:
        """The train_end hooks. Where the run already failed, a failing hook does not hide
        that failure (it is reported as a warning); after a good run it fails the run."""
        if error is None:
            with self._phase("calling the train_end hooks", iteration):
                self.hook.dacapo_trainers_train_end(run=self.run, iteration=iteration, error=None)
            return
        try:
            self.hook.dacapo_trainers_train_end(run=self.run, iteration=iteration, error=error)
        except Exception as hook_error:
            warnings.warn(
                f"a train_end hook failed too: {type(hook_error).__name__}: "
                f"{flat_message(hook_error, limit=600)} (raised in {raised_in(hook_error)})",
                DacapoTrainersWarning,
                stacklevel=2,
            )

    # -- checkpoints -------------------------------------------------------------------------

    def _resume(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
        restored = load_latest(self.checkpoints, set_aside=self.trainer.is_output_process)
        if restored is None:
            return 0
        with self._phase(f"restoring checkpoint {restored.path}", 0):
            return restore_checkpoint(restored.path, restored.state, model, optimizer, self.trainer)

    def _checkpoint(self, iteration: int, prepared: _Prepared) -> Path:
        path = checkpoint_path(self.checkpoints, iteration)
        with self._phase(f"writing the checkpoint of iteration {iteration}", iteration):
            self.trainer.barrier()
            if self.trainer.is_output_process:
                state = {
                    "iteration": iteration,
                    "model": prepared.model.state_dict(),
                    "optimizer": prepared.optimizer.state_dict(),
                    "trainer": self.trainer.state_dict(),
                    "random": random_states(),
                    IDENTITY_KEY: run_identity(self.run, self.registry),  # the run's identity
                }
                save_checkpoint(path, state)
                self.hook.dacapo_trainers_train_checkpoint_written(
                    run=self.run, iteration=iteration, path=path
                )
            self.trainer.barrier()
        return path

    # -- stopping ----------------------------------------------------------------------------

    def _stop_gracefully(self, iteration: int, last: Path | None, prepared: _Prepared) -> NoReturn:
        """After a first SIGINT/SIGTERM: checkpoint the finished iteration, then stop."""
        received = self.stop.received
        assert received is not None
        self.stop.graceful = False  # a second signal stops at once
        if last is None or iteration_of(last) != iteration:
            last = self._checkpoint(iteration, prepared)
        raise self._interrupted(received, iteration, last)

    def _interrupted(
        self, signal_number: int, iteration: int, written: Path | None
    ) -> RunInterrupted:
        last = written if written is not None else latest_checkpoint(self.checkpoints)
        return interrupted(signal_number, iteration, last, abandoned=written is None)

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
        return NonFiniteLossError(non_finite_message(iteration, loss, last))

    def _failed(self, error: Exception, iteration: int, doing: str) -> TrainingFailedError:
        trainer = describe(self.run.trainer_config, self.registry)
        message = failure_message(
            error, iteration, doing, self.output, latest_checkpoint(self.checkpoints), trainer
        )
        return TrainingFailedError(message, iteration)
