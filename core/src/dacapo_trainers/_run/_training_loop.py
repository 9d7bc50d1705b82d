"""The training loop of one process: from opened inputs to the last checkpoint.

Used by :func:`dacapo_trainers.train` (``_driver``) after the inputs are checked and the
output folder is claimed::

    optimizer; trainer.build_batch_provider(datasets, model, task, <output>/snapshots.zarr)
    restore the newest intact checkpoint (model, optimizer, trainer state, RNG states)
    with trainer: train_start hooks; iterate: iteration_end (and snapshot) hooks,
    checkpoints every checkpoint_interval and at the end; train_end hooks (always)

A first SIGINT/SIGTERM inside the loop stops it after the step with a checkpoint (single
process; see ``_signals``); any other failure becomes a :class:`TrainingFailedError` naming
the iteration, the phase and where it was raised.
"""

from __future__ import annotations

import errno
import math
import signal
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from .._arrays._zarr_io import ZarrContainer
from .._configs._run_config import RunConfig
from .._contract._trainer import Trainer
from .._errors import (
    CannotTrainError,
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
from ._run_inputs import RunInputs, describe
from ._run_start import prepare_model, run_validation
from ._signals import StopRequests

SNAPSHOTS = "snapshots.zarr"
# Errors that say the output folder's disk or permissions failed a write.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}
_ACCESS_ERRNOS = {errno.EACCES, errno.EPERM}


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


def _is_multi_process(trainer: Trainer) -> bool:
    """Whether the trainer coordinates several processes (it overrides ``barrier``)."""
    return type(trainer).barrier is not Trainer.barrier


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
        # What the run is doing, for the message of an unexpected failure.
        self._doing = "preparing to train"
        if trainer.is_output_process:
            self.observers = [*run_observers(run, self.output, quiet), *self.observers]

    def execute(self) -> TrainResult:
        run, trainer, inputs = self.run, self.trainer, self.inputs
        start = 0
        try:
            self._doing = f"moving the model to {inputs.device}"
            model = inputs.model.to(inputs.device)
            self._doing = "preparing the model (start_config)"
            fresh = latest_checkpoint(self.checkpoints) is None
            for note in prepare_model(run, model, fresh=fresh):
                if trainer.is_output_process:
                    print(f"note: {note}", file=sys.stderr)
            self._doing = "opening the validation datasets"
            validation = (
                run_validation(run, inputs.task, model) if trainer.is_output_process else None
            )
            self._doing = "creating the optimizer"
            optimizer = trainer.create_optimizer(model)
            self._doing = "building the batch provider"
            snapshots = ZarrContainer(self.output / SNAPSHOTS)
            try:
                trainer.build_batch_provider(inputs.datasets, model, inputs.task, snapshots)
            except ValueError as refusal:  # the trainer refuses the data it now sees
                raise CannotTrainError(
                    f"{type(run.trainer_config).__name__} {run.trainer_config.name!r} cannot "
                    f"build its batch provider: {refusal}"
                ) from refusal
            self._doing = "restoring the newest checkpoint"
            start = self._resume(model, optimizer)
        except BaseException as failure:
            trainer.close()
            if isinstance(failure, DacapoTrainersError) or not isinstance(failure, Exception):
                raise
            raise self._failed(failure, start) from failure
        last = latest_checkpoint(self.checkpoints)
        if start >= run.num_iterations:  # already complete: release what the build took
            trainer.close()
            return TrainResult(self.output, start, start, last)
        trainer.add_snapshot_listener(self._snapshot_written)
        for observer in self.observers:
            self.manager.register(observer)
        iteration = self.stop.iteration = start
        error: BaseException | None = None
        try:
            with trainer:
                # From here a first signal is only recorded, and the run stops after a step.
                self.stop.graceful = not _is_multi_process(trainer)
                self._doing = "calling the train_start hooks"
                self.hook.dacapo_trainers_train_start(
                    run=run,
                    trainer=trainer,
                    model=model,
                    optimizer=optimizer,
                    start_iteration=start,
                    output=self.output,
                )
                self._doing = f"the step of iteration {iteration}"
                remaining = run.num_iterations - start
                for stats in trainer.iterate(remaining, model, optimizer, inputs.device):
                    if not math.isfinite(stats.loss):
                        raise self._non_finite(stats.iteration, stats.loss)
                    iteration = self.stop.iteration = stats.iteration + 1
                    self._doing = f"calling the hooks of iteration {stats.iteration}"
                    self.hook.dacapo_trainers_train_iteration_end(
                        run=run, stats=stats, num_iterations=run.num_iterations
                    )
                    self._announce_snapshots()
                    if validation is not None and validation.due(iteration):
                        self._doing = f"validating after iteration {stats.iteration}"
                        self.hook.dacapo_trainers_train_validation_end(
                            run=run,
                            iteration=stats.iteration,
                            loss=validation.loss(model, inputs.device),
                        )
                    if iteration % run.checkpoint_interval == 0 or iteration >= run.num_iterations:
                        last = self._checkpoint(iteration, model, optimizer)
                    if iteration >= run.num_iterations:
                        break
                    if self.stop.received is not None:
                        last = self._stop_gracefully(iteration, last, model, optimizer)
                    self._doing = f"the step of iteration {iteration}"
        except RunInterrupted as stopped:
            error = stopped
            if stopped.checkpoint is not None:  # stopped gracefully: already complete
                raise
            raise self._interrupted(stopped.signal_number, iteration, None) from None
        except DacapoTrainersError as caught:
            error = caught
            raise
        except Exception as caught:
            error = caught
            raise self._failed(caught, iteration) from caught
        except BaseException as caught:
            error = caught
            raise
        finally:
            self.stop.graceful = False
            try:
                self._end(iteration, error)
            finally:
                for observer in self.observers:
                    self.manager.unregister(observer)
        return TrainResult(self.output, iteration, start, last)

    def _end(self, iteration: int, error: BaseException | None) -> None:
        """The train_end hooks. Where the run already failed, a failing hook does not hide
        that failure (it is reported as a warning); after a good run it fails the run."""
        self._doing = "calling the train_end hooks"
        try:
            self.hook.dacapo_trainers_train_end(run=self.run, iteration=iteration, error=error)
        except Exception as hook_error:
            if error is None:
                if isinstance(hook_error, DacapoTrainersError):
                    raise
                raise self._failed(hook_error, iteration) from hook_error
            warnings.warn(
                f"a train_end hook failed too: {type(hook_error).__name__}: "
                f"{flat_message(hook_error, limit=600)} (raised in {raised_in(hook_error)})",
                DacapoTrainersWarning,
                stacklevel=2,
            )

    def _resume(self, model: Any, optimizer: Any) -> int:
        restored = load_latest(self.checkpoints, set_aside=self.trainer.is_output_process)
        if restored is None:
            return 0
        self._doing = f"restoring checkpoint {restored.path}"
        return restore_checkpoint(restored.path, restored.state, model, optimizer, self.trainer)

    def _checkpoint(self, iteration: int, model: Any, optimizer: Any) -> Path:
        self._doing = f"writing the checkpoint of iteration {iteration}"
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
                    IDENTITY_KEY: run_identity(self.run, self.registry),  # the run's identity
                },
            )
            self.hook.dacapo_trainers_train_checkpoint_written(
                run=self.run, iteration=iteration, path=path
            )
        self.trainer.barrier()
        return path

    def _stop_gracefully(
        self, iteration: int, last: Path | None, model: Any, optimizer: Any
    ) -> Path:
        """After a first SIGINT/SIGTERM: checkpoint the finished iteration, then stop."""
        received = self.stop.received
        assert received is not None
        self.stop.graceful = False  # a second signal stops at once
        if last is None or iteration_of(last) != iteration:
            last = self._checkpoint(iteration, model, optimizer)
        raise self._interrupted(received, iteration, last)

    def _interrupted(
        self, signal_number: int, iteration: int, written: Path | None
    ) -> RunInterrupted:
        name = signal.Signals(signal_number).name
        if written is not None:
            return RunInterrupted(
                f"stopped by {name} after iteration {iteration}; checkpoint {written} written, "
                "the same command resumes from it",
                signal_number,
                iteration,
                written,
            )
        last = latest_checkpoint(self.checkpoints)
        resume = f"resumes from {last}" if last else "starts over (no checkpoint yet)"
        return RunInterrupted(
            f"stopped by {name} during iteration {iteration} (the step was abandoned); the "
            f"same command {resume}",
            signal_number,
            iteration,
            last,
        )

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
        if last is not None:
            kept = f"the last good checkpoint is kept: {last}"
            then = "then re-run to resume from that checkpoint (or delete it to start over)"
        else:
            kept = "no checkpoint was written yet"
            then = "then run the same command again: it starts over"
        return NonFiniteLossError(
            f"the loss became {loss} at iteration {iteration}; the run stopped and {kept}. "
            f"Lower the learning rate, check the data (raw values, labels) or the task's loss, "
            f"{then}"
        )

    def _failed(self, error: Exception, iteration: int) -> TrainingFailedError:
        last = latest_checkpoint(self.checkpoints)
        then = (
            f"every checkpoint written is intact, and the same command resumes from {last.name}"
            if last
            else "then run the same command again (no checkpoint was written yet)"
        )
        if self._is_write_failure(error):
            assert isinstance(error, OSError)
            target = f" ({error.filename})" if error.filename else ""
            return TrainingFailedError(
                f"the run stopped at iteration {iteration} while {self._doing}: cannot write "
                f"to the output folder {self.output}: {error.strerror}{target}. Free disk "
                f"space (or raise the file-size limit or quota, or choose another output); {then}",
                iteration,
            )
        trainer = describe(self.run.trainer_config, self.registry)
        return TrainingFailedError(
            f"the run stopped at iteration {iteration} while {self._doing} ({trainer}): "
            f"{type(error).__name__}: {flat_message(error, limit=600)} "
            f"(raised in {raised_in(error)}). "
            f"Fix the cause (--debug shows the traceback); {then}",
            iteration,
        )

    def _is_write_failure(self, error: BaseException) -> bool:
        if not isinstance(error, OSError):
            return False
        if error.errno in _WRITE_ERRNOS:
            return True
        inside = error.filename is not None and str(error.filename).startswith(str(self.output))
        return error.errno in _ACCESS_ERRNOS and inside
