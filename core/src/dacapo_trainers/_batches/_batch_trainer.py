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

import attrs

from .._contract._schedules import linear_warmup
from .._contract._stats import TrainingIterationStats
from .._contract._trainer import Trainer
from .._errors import TrainingError
from ._batch import Batch
from ._device_transfer import DeviceTransfer, InFlight, device_transfer
from ._precision import MixedPrecision, precision_problem
from ._snapshots import snapshot_due, write_snapshot

if TYPE_CHECKING:
    import torch

    from .._contract._protocols import Dataset, LocalContainerIdentifier, Model, Task
    from ._batch_config import BatchTrainerConfig

#: Keys of :meth:`BatchTrainer.state_dict` that belong to the data side (the generator and the
#: subclass's own state): what a prefetched batch has already moved on.
_DATA_STATE = ("generator", "batches")
#: The key of the fp16 loss scaler's state in :meth:`BatchTrainer.state_dict`.
_SCALER_STATE = "grad_scaler"


@attrs.define(eq=False)
class _Prefetched:
    """Batch ``index``, requested ahead and on its way to the device, and the data state from
    just before it was drawn."""

    index: int
    flight: InFlight
    restore_point: dict[str, Any]


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

    **Precision and compilation** (:class:`BatchTrainerConfig`): ``precision`` ``"bf16"`` or
    ``"fp16"`` autocasts forward and loss (``"fp16"`` with a ``torch.amp.GradScaler`` whose
    state :meth:`state_dict` holds); ``compile`` runs the forward through
    ``torch.compile(model)`` (the model itself, and so its checkpointed ``state_dict``, is
    unchanged); ``channels_last_3d`` puts the model's weights and the raw batch in that memory
    format. With the defaults the step is DaCapo's plain float32 step.
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
        self._prefetched: _Prefetched | None = None
        self._transfer: DeviceTransfer | None = None
        self._precision: MixedPrecision | None = None
        self._compiled: tuple[Model, Any] | None = None  # (model, torch.compile(model))
        # Loaded state whose piece does not exist yet; applied when the piece is created.
        self._pending_state: dict[str, Any] = {}

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
        self._set_up_step(model, device)
        self.device = device
        return self._iterate(num_iterations, model, optimizer, device)

    # -- state and context -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The warmup schedule, :attr:`generator`, :meth:`batch_state_dict` and, with
        ``precision`` ``"fp16"``, the loss scaler (``"grad_scaler"``).

        The data state is the one from before the batch of :attr:`iteration` was drawn (it is
        requested ahead), so that a resumed run draws that batch again.
        """
        state = dict(self._pending_state)
        if self._scheduler is not None:
            state["scheduler"] = self._scheduler.state_dict()
        if self._precision is not None and self._precision.scaler is not None:
            state[_SCALER_STATE] = self._precision.state_dict()
        prefetched = self._prefetched
        if prefetched is not None and prefetched.index == self.iteration:
            state.update(prefetched.restore_point)
        elif self._generator is not None:
            state.update(self._data_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state, before or after the pieces exist (class doc)."""
        self._drop_prefetched(rewind=False)
        self._pending_state.update(
            {key: state[key] for key in ("scheduler", _SCALER_STATE, *_DATA_STATE) if key in state}
        )
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
        self._transfer = None
        self._compiled = None
        self.close_batches()

    # -- internals -------------------------------------------------------------------------------

    def _data_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"generator": self.generator.get_state()}
        batches = self.batch_state_dict()
        if batches:
            state["batches"] = batches
        return state

    def _apply_pending_state(self) -> None:
        import torch

        pending = self._pending_state
        if self._scheduler is not None and "scheduler" in pending:
            self._scheduler.load_state_dict(pending.pop("scheduler"))
        if self._prepared and self._generator is not None:
            if "generator" in pending:
                self._generator.set_state(torch.as_tensor(pending.pop("generator")).cpu())
            if "batches" in pending:
                self.load_batch_state_dict(pending.pop("batches"))
        if self._precision is not None and _SCALER_STATE in pending:
            self._precision.load_state_dict(pending.pop(_SCALER_STATE))

    def _set_up_step(self, model: Model, device: torch.device) -> None:
        """The precision, transfer and memory format of the steps on ``device``."""
        import torch

        config = self.trainer_config
        problem = precision_problem(config.precision, device)
        if problem is not None:
            raise TrainingError(
                f"{type(config).__name__} {config.name!r} cannot train on {device} with "
                f"precision {config.precision!r} ($.trainer_config.precision): {problem}. "
                "Choose precision '32' (or 'bf16' where the device supports it), or another "
                "device"
            )
        precision = self._precision
        if precision is None or precision.device_type != device.type:
            state = precision.state_dict() if precision is not None else {}
            self._precision = MixedPrecision(config.precision, device)
            self._precision.load_state_dict(state)
            self._apply_pending_state()
        if self._transfer is None or self._transfer.device != device:
            # A batch held ahead for another device goes back and is drawn again.
            held = self._prefetched
            self._drop_prefetched(rewind=held is not None and held.index == self.iteration)
            self._transfer = device_transfer(device)
        if config.channels_last_3d:
            model.to(memory_format=torch.channels_last_3d)  # 5-D weights only; in place

    def _forward(self, model: Model) -> Any:
        """What the step calls for the forward: ``model``, or its ``torch.compile`` wrapper
        (made once per model; the model and its ``state_dict`` stay as they are)."""
        if not self.trainer_config.compile:
            return model
        if self._compiled is None or self._compiled[0] is not model:
            import torch

            self._compiled = (model, torch.compile(model))
        return self._compiled[1]

    def _take_batch(self, index: int) -> InFlight:
        """Batch ``index`` on its way to the device: the one requested ahead, or a new one."""
        prefetched = self._prefetched
        if prefetched is not None and prefetched.index == index:
            self._prefetched = None
            return prefetched.flight
        self._drop_prefetched(rewind=False)
        return self._send(self.next_batch(index))

    def _prefetch(self, index: int) -> _Prefetched:
        """Request batch ``index`` ahead and start its transfer, remembering the data state
        from before it."""
        restore_point = self._data_state()
        self._prefetched = _Prefetched(index, self._send(self.next_batch(index)), restore_point)
        return self._prefetched

    def _send(self, batch: Batch) -> InFlight:
        """Start the transfer of ``batch`` (released again where starting it fails)."""
        assert self._transfer is not None, "iterate() sets the transfer up first"
        try:
            return self._transfer.start(batch)
        except BaseException:
            batch.release()
            raise

    def _drop_prefetched(self, *, rewind: bool) -> None:
        """Release the batch requested ahead; with ``rewind``, undo its draws."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is None:
            return
        assert self._transfer is not None, "a batch is only held ahead by iterate()"
        self._transfer.release(prefetched.flight)
        if rewind:
            self._pending_state.update(prefetched.restore_point)
            self._apply_pending_state()

    def _step(
        self,
        model: Model,
        optimizer: torch.optim.Optimizer,
        inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        *,
        keep_gradients: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One optimizer step on ``inputs``: the loss, the prediction (not synced) and, with
        ``keep_gradients``, d loss / d prediction (unscaled; else None)."""
        import torch

        assert self._task is not None and self._scheduler is not None
        precision = self._precision
        assert precision is not None, "iterate() sets the precision up first"
        raw, target, weight = inputs
        if self.trainer_config.channels_last_3d and raw.dim() == 5:
            raw = raw.contiguous(memory_format=torch.channels_last_3d)
        forward = self._forward(model)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            prediction = forward(raw)
            if keep_gradients and prediction.requires_grad:
                prediction.retain_grad()
            loss = self._task.loss.compute(prediction, target, weight)
        scale = precision.gradient_scale() if keep_gradients else 1.0
        precision.backward(loss)
        precision.step(optimizer)
        self._scheduler.step()
        gradient = prediction.grad if keep_gradients else None
        if gradient is not None and scale != 1.0:
            gradient = gradient / scale
        return loss, prediction, gradient

    def _write_snapshot(
        self,
        iteration: int,
        batch: Batch,
        prediction: torch.Tensor,
        gradient: torch.Tensor | None,
    ) -> None:
        container = self._snapshot_container
        assert container is not None
        arrays = {
            "raw": batch.raw,
            "gt": batch.gt,
            "target": batch.target,
            "weight": batch.weight,
            # bfloat16 has no numpy type: autocast outputs are written as float32
            "prediction": prediction.detach().float(),
            "gradients": gradient.float() if gradient is not None else None,
            "mask": batch.mask,
        }
        write_snapshot(container, iteration, arrays, batch.geometry)
        self.report_snapshot(iteration, container)

    def _iterate(
        self,
        num_iterations: int,
        model: Model,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        transfer = self._transfer
        assert transfer is not None
        model.train()
        ahead: _Prefetched | None = None
        started = time.perf_counter()
        try:
            for step in range(num_iterations):
                iteration = self.iteration
                flight = self._take_batch(iteration)
                try:
                    snapshot = self.snapshot_due(iteration)
                    inputs = transfer.ready(flight)
                    loss, prediction, gradient = self._step(
                        model, optimizer, inputs, keep_gradients=snapshot
                    )
                    if snapshot:
                        self._write_snapshot(iteration, flight.batch, prediction, gradient)
                finally:
                    transfer.release(flight)
                if step + 1 < num_iterations:
                    ahead = self._prefetch(iteration + 1)
                stats = TrainingIterationStats(
                    iteration=iteration, loss=loss.item(), time=time.perf_counter() - started
                )
                self.iteration = iteration + 1
                yield stats
                started = time.perf_counter()
        finally:
            # Left mid-way (the caller stopped consuming, or an error): the batch requested
            # ahead goes back, and its draws are undone so that the next call draws it again.
            if ahead is not None and self._prefetched is ahead:
                self._drop_prefetched(rewind=ahead.index == self.iteration)
