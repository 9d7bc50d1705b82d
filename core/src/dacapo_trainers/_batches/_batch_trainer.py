"""BatchTrainer: the training loop of batch trainers; a subclass writes only its data.

As Lightning splits it: the base owns the optimizer and its warmup schedule, the trainer's
random generator, the restore order, the ``iterate`` loop (timing, device transfer, step,
stats, iteration count) and snapshots; a subclass says how it prepares its data and how it
makes the next batch. Nothing here imports torch before a trainer runs.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .._contract._schedules import linear_warmup
from .._contract._stats import TrainingIterationStats
from .._contract._trainer import Trainer
from ._batch import Batch
from ._batch_queue import BatchQueue, Prefetched
from ._batch_state import SCALER_STATE, SCHEDULER_STATE, PendingState, data_state
from ._device_transfer import device_transfer
from ._snapshots import snapshot_due, write_batch_snapshot
from ._step import StepRunner

if TYPE_CHECKING:
    import torch

    from .._contract._protocols import Dataset, LocalContainerIdentifier, Model, Task
    from ._batch_config import BatchTrainerConfig


class BatchTrainer(Trainer):
    """Base of trainers that train one batch per iteration; implement how batches are made.

    A subclass implements:

    * :meth:`prepare_batches` ``(datasets, model, task)``: check and read the data, build
      samplers or pipelines; start nothing. Raise :class:`ValueError` with the reason for
      data it cannot train on.
    * :meth:`next_batch` ``(index) -> Batch``: batch ``index`` (a :class:`Batch`: raw,
      target, weight, optionally gt and mask, and their :class:`BatchGeometry`).

    and may override :meth:`start_batches` and :meth:`close_batches` (producers such as worker
    processes, started on ``__enter__`` and stopped on ``__exit__``), :meth:`build_optimizer`
    (default: DaCapo's RAdam), :meth:`batch_state_dict` and :meth:`load_batch_state_dict`
    (data state beyond :attr:`generator`), and :meth:`cannot_train_reason`. Its config
    derives from :class:`BatchTrainerConfig`.

    **Life cycle and restore order.** The training driver calls, in this order::

        trainer = config.build_trainer()
        trainer.seed = run.seed
        trainer.cannot_train_reason(datasets)
        optimizer = trainer.create_optimizer(model)  # build_optimizer() + warmup schedule
        trainer.build_batch_provider(datasets, model, task, snapshot_container)
            # generator seeded from seed, then prepare_batches()
        trainer.load_state_dict(state)               # resuming: schedule, generator, batches
        trainer.iteration = saved_iteration
        with trainer:                                # start_batches(iteration)
            for stats in trainer.iterate(n, model, optimizer, device): ...
                                                     # next_batch(i), consecutive i
        # __exit__: close() -> close_batches()

    :meth:`load_state_dict` may also come first (DaCapo and tests do that): each part of the
    state is applied as soon as its piece exists (the schedule in :meth:`create_optimizer`,
    the generator and the subclass's state after :meth:`prepare_batches`), so either order
    resumes the same run; a subclass never handles state arriving early.

    **Random state.** :attr:`generator` (a CPU ``torch.Generator`` seeded from
    :attr:`~dacapo_trainers.Trainer.seed`, drawn from torch's global generator when None) is
    the trainer's own: draw every random choice of the batches from it and the base saves and
    restores it, so that a resumed run draws the batches an uninterrupted one would have.
    Random samplers that take no generator (``torch.distributions.Beta``, ``Gamma``, numpy
    code) run on a seed drawn from it, with torch's global generator forked around them::

        seed = self.draw_seed()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ratio = torch.distributions.Beta(2.0, 2.0).sample()

    **The loop.** Each iteration ``i`` of :meth:`iterate`: take batch ``i`` (requested, and
    its raw, target and weight sent to the device, during iteration ``i - 1``), then
    ``zero_grad``, forward and ``task.loss.compute`` (under ``torch.autocast`` for a
    ``precision`` other than ``"32"``), backward, the optimizer step and the warmup step;
    write the snapshot when due (:meth:`snapshot_due`), release the batch
    (:meth:`Batch.release`, once its copy to the device has completed), request batch
    ``i + 1`` from :meth:`next_batch` and start its transfer (while the device still computes
    step ``i``), read the loss, count the iteration and yield its stats. ``next_batch`` is
    called with consecutive indices from :attr:`~dacapo_trainers.Trainer.iteration` on; a
    producer that runs ahead restarts where an index is not the one it expected (a resume).
    At most one batch is held while the next one is requested.

    **The transfer.** On the CPU a batch reaches the model as it is (no copy). To a CUDA
    device, host tensors are copied on a side stream, overlapped with the previous step; the
    step's stream waits for the copy, not the host. The copy is asynchronous where the batch
    lies in page-locked memory (:attr:`Batch.pinned`, :func:`~dacapo_trainers.pin_host_memory`),
    and there is never a host copy of the trainer's own. Tensors already on the device are
    used as they are.

    **Precision and compilation**: ``precision``, ``compile`` and ``channels_last_3d`` of
    :class:`BatchTrainerConfig` (the fp16 loss scaler's state is part of :meth:`state_dict`);
    with the defaults the step is DaCapo's plain float32 step.
    """

    trainer_config: BatchTrainerConfig

    def __init__(self, trainer_config: BatchTrainerConfig) -> None:
        super().__init__(trainer_config)
        #: The device of the running :meth:`iterate` (None before the first call).
        #: :meth:`next_batch` may return tensors already on it.
        self.device: torch.device | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._scheduler: torch.optim.lr_scheduler.LinearLR | None = None
        self._generator: torch.Generator | None = None
        self._task: Task | None = None
        self._snapshot_container: LocalContainerIdentifier | None = None
        self._prepared = False
        self._queue: BatchQueue | None = None  # from the first iterate() on a device
        self._steps = StepRunner(trainer_config)
        self._pending_state = PendingState()

    # -- what a subclass implements -------------------------------------------------------------

    @abc.abstractmethod
    def prepare_batches(self, datasets: Sequence[Dataset], model: Model, task: Task) -> None:
        """Check and read ``datasets`` and build what makes batches; start no process.

        Called by :meth:`build_batch_provider`, with :attr:`generator` freshly seeded (draws
        from it here are repeated by a resumed run). Raise :class:`ValueError` with a reason
        a user can act on for data that cannot be trained on (e.g. smaller than the model).
        """

    @abc.abstractmethod
    def next_batch(self, index: int) -> Batch:
        """Batch ``index``: its random choices drawn from :attr:`generator` (or ``index``).

        Indices are consecutive from :attr:`~dacapo_trainers.Trainer.iteration` on. Fill
        :attr:`Batch.gt` and :attr:`Batch.mask` at least where :meth:`snapshot_due` is true
        for ``index``.
        """

    def start_batches(self, first_index: int) -> None:
        """Start producers (threads, processes) making batches from ``first_index`` on.

        Called on ``__enter__`` after :meth:`build_batch_provider`; the default starts nothing.
        """

    def close_batches(self) -> None:
        """Stop every producer and release what :meth:`prepare_batches` holds.

        Called by :meth:`close` (so on ``__exit__``, also after an error), also when nothing
        was prepared and more than once: make it idempotent. After it, a trainer needs
        :meth:`build_batch_provider` again.
        """

    def build_optimizer(self, model: Model) -> torch.optim.Optimizer:
        """The optimizer over ``model``'s parameters: RAdam with decoupled weight decay, as
        DaCapo. Override it to choose another; the warmup wraps whatever it returns."""
        import torch

        return torch.optim.RAdam(
            model.parameters(), lr=self.learning_rate, decoupled_weight_decay=True
        )

    def batch_state_dict(self) -> dict[str, Any]:
        """State of the batch production beyond :attr:`generator` (default none).

        Taken as it was before the next batch was requested, saved in checkpoints; tensors,
        numbers, strings, lists and dicts only.
        """
        return {}

    def load_batch_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`batch_state_dict`'s state; called after :meth:`prepare_batches`."""

    # -- what a subclass uses --------------------------------------------------------------------

    @property
    def generator(self) -> torch.Generator:
        """The trainer's random generator (CPU), from :meth:`build_batch_provider` on."""
        if self._generator is None:
            raise RuntimeError(
                f"{type(self).__name__}.generator exists from build_batch_provider() on"
            )
        return self._generator

    def draw_seed(self) -> int:
        """A seed (0 to 2**62) drawn from :attr:`generator`, for samplers without a generator."""
        import torch

        return int(torch.randint(0, 2**62, (), generator=self.generator).item())

    def snapshot_due(self, iteration: int) -> bool:
        """Whether iteration ``iteration`` writes a snapshot.

        True when ``snapshot_interval`` is set, :meth:`build_batch_provider` got a snapshot
        container and ``iteration % snapshot_interval == 0`` (DaCapo's timing).
        """
        return self._snapshot_container is not None and snapshot_due(
            iteration, self.trainer_config.snapshot_interval
        )

    # -- DaCapo's API ----------------------------------------------------------------------------

    def create_optimizer(self, model: Model) -> torch.optim.Optimizer:
        """:meth:`build_optimizer` with DaCapo's linear warmup (:func:`linear_warmup`).

        The warmup goes from ``warmup_start_factor`` times the learning rate up to it over
        ``warmup_iterations``; :meth:`iterate` steps it once per iteration and
        :meth:`state_dict` saves it.
        """
        config = self.trainer_config
        optimizer = self.build_optimizer(model)
        self._scheduler = linear_warmup(
            optimizer, config.warmup_iterations, config.warmup_start_factor
        )
        self._optimizer = optimizer
        self._apply_pending_state()
        return optimizer

    def build_batch_provider(
        self,
        datasets: Sequence[Dataset],
        model: Model,
        task: Task,
        snapshot_container: LocalContainerIdentifier | None = None,
    ) -> None:
        """Seed :attr:`generator` from :attr:`~dacapo_trainers.Trainer.seed`, then
        :meth:`prepare_batches`. Snapshots go to ``snapshot_container`` (none when None).

        Raises the :class:`ValueError` of :meth:`prepare_batches` for unusable data.
        """
        import torch

        self.close()
        seed = self.seed
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        self._generator = torch.Generator().manual_seed(seed)
        self._task = task
        self._snapshot_container = snapshot_container
        self.prepare_batches(datasets, model, task)
        self._prepared = True
        self._apply_pending_state()

    def iterate(
        self,
        num_iterations: int,
        model: Model,
        optimizer: torch.optim.Optimizer,
        device: torch.device | str,
    ) -> Iterator[TrainingIterationStats]:
        """Run ``num_iterations`` steps from :attr:`iteration`, yielding each one's stats.

        ``model`` must already be on ``device``; ``optimizer`` must be the one
        :meth:`create_optimizer` returned. ``stats.time`` is the wall time from the end of
        the previous iteration (or from the call) to the end of this one, waiting for batches
        included. See the class docstring for what an iteration does.

        Raises :class:`~dacapo_trainers.TrainingError` (before any step) where ``device``
        cannot run the configured ``precision``.
        """
        import torch

        if not self._prepared or self._task is None:
            raise RuntimeError("call build_batch_provider() before iterate()")
        if self._scheduler is None or optimizer is not self._optimizer:
            raise RuntimeError("iterate() needs the optimizer that create_optimizer() returned")
        device = torch.device(device)
        self._steps.set_up(model, device)
        self._apply_pending_state()  # the loss scaler's state, once the scaler exists
        if self._queue is None or self._queue.transfer.device != device:
            # A batch held ahead for another device goes back and is drawn again.
            held = self._queue.ahead if self._queue is not None else None
            self._drop_prefetched(rewind=held is not None and held.index == self.iteration)
            self._queue = BatchQueue(device_transfer(device))
        self.device = device
        return self._iterate(num_iterations, model, optimizer, device)

    # -- state and context -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The warmup schedule, :attr:`generator`, :meth:`batch_state_dict` and, with
        ``precision`` ``"fp16"``, the loss scaler (``"grad_scaler"``).

        The data state is the one from before the batch of :attr:`iteration` was drawn (it is
        requested ahead), so that a resumed run draws that batch again.
        """
        state = dict(self._pending_state.parts)
        if self._scheduler is not None:
            state[SCHEDULER_STATE] = self._scheduler.state_dict()
        precision = self._steps.precision
        if precision is not None and precision.scaler is not None:
            state[SCALER_STATE] = precision.state_dict()
        prefetched = self._queue.ahead if self._queue is not None else None
        if prefetched is not None and prefetched.index == self.iteration:
            state.update(prefetched.restore_point)
        elif self._generator is not None:
            state.update(self._data_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state, before or after the pieces exist (class doc)."""
        self._drop_prefetched(rewind=False)
        self._pending_state.load(state)
        self._apply_pending_state()

    def __enter__(self) -> BatchTrainer:
        """Start the batch producers (:meth:`start_batches`) from :attr:`iteration` on."""
        if self._prepared:
            self.start_batches(self.iteration)
        return self

    def close(self) -> None:
        """Release the batch held ahead and everything :meth:`close_batches` releases.

        Safe to call more than once; after it, call :meth:`build_batch_provider` again to
        train again.
        """
        self._drop_prefetched(rewind=False)
        self._prepared = False
        self._queue = None
        self._steps.compiled = None
        self.close_batches()

    # -- internals -------------------------------------------------------------------------------

    def _data_state(self) -> dict[str, Any]:
        return data_state(self.generator, self.batch_state_dict())

    def _apply_pending_state(self) -> None:
        generator = self._generator if self._prepared else None
        load_batches, precision = self.load_batch_state_dict, self._steps.precision
        self._pending_state.apply(self._scheduler, generator, load_batches, precision)

    def _write_snapshot(
        self, iteration: int, batch: Batch, prediction: torch.Tensor, gradient: Any
    ) -> None:
        container = self._snapshot_container
        assert container is not None
        write_batch_snapshot(container, iteration, batch, prediction, gradient)
        self.report_snapshot(iteration, container)

    def _drop_prefetched(self, *, rewind: bool) -> None:
        """Release the batch requested ahead; with ``rewind``, undo its draws."""
        dropped = self._queue.drop() if self._queue is not None else None
        if rewind and dropped is not None:
            self._pending_state.parts.update(dropped.restore_point)
            self._apply_pending_state()

    def _iterate(
        self,
        num_iterations: int,
        model: Model,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        queue, scheduler, task = self._queue, self._scheduler, self._task
        assert queue is not None and scheduler is not None and task is not None
        transfer = queue.transfer
        model.train()
        ahead: Prefetched | None = None
        started = time.perf_counter()
        try:
            for step in range(num_iterations):
                iteration = self.iteration
                flight = queue.take(iteration, self.next_batch)
                try:
                    snapshot = self.snapshot_due(iteration)
                    inputs = transfer.ready(flight)
                    loss, prediction, gradient = self._steps.run(
                        model, optimizer, scheduler, task, inputs, keep_gradients=snapshot
                    )
                    if snapshot:
                        assert self._snapshot_container is not None
                        container = self._snapshot_container
                        write_batch_snapshot(
                            container, iteration, flight.batch, prediction, gradient
                        )
                        self.report_snapshot(iteration, container)
                finally:
                    transfer.release(flight)
                if step + 1 < num_iterations:
                    restore_point = self._data_state()
                    ahead = queue.request(iteration + 1, self.next_batch, restore_point)
                value = self._steps.loss_value(loss, iteration)
                stats = TrainingIterationStats(
                    iteration=iteration, loss=value, time=time.perf_counter() - started
                )
                self.iteration = iteration + 1
                yield stats
                started = time.perf_counter()
        finally:
            # Left mid-way (the caller stopped consuming, or an error): the batch requested
            # ahead goes back, and its draws are undone so that the next call draws it again.
            if ahead is not None and queue.ahead is ahead:
                self._drop_prefetched(rewind=ahead.index == self.iteration)
