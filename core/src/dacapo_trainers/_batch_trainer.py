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

from ._batch import Batch
from ._schedules import linear_warmup
from ._snapshots import snapshot_due, write_snapshot
from ._stats import TrainingIterationStats
from ._trainer import Trainer

if TYPE_CHECKING:
    import torch

    from ._batch_config import BatchTrainerConfig
    from ._protocols import Dataset, LocalContainerIdentifier, Model, Task

#: Keys of :meth:`BatchTrainer.state_dict` that belong to the data side (the generator and the
#: subclass's own state): what a prefetched batch has already moved on.
_DATA_STATE = ("generator", "batches")


@attrs.define(eq=False)
class _Prefetched:
    """Batch ``index``, requested ahead, and the data state from just before it was drawn."""

    index: int
    batch: Batch
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

    **The loop.** Each iteration ``i`` of :meth:`iterate`: take batch ``i`` (requested during
    iteration ``i - 1``), move raw, target and weight to the device (no copy where they are
    already there; through pinned memory from the host to CUDA), then ``zero_grad``, forward,
    ``task.loss.compute``, backward, the optimizer step and the warmup step; write the
    snapshot when due (:meth:`snapshot_due`), release the batch (:meth:`Batch.release`),
    request batch ``i + 1`` from :meth:`next_batch` (while the device still computes step
    ``i``), read the loss, count the iteration and yield its stats. ``next_batch`` is called
    with consecutive indices from :attr:`~dacapo_trainers.Trainer.iteration` on; a producer
    that runs ahead restarts where an index is not the one it expected (a resume). At most one
    batch is held while the next one is requested.
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
        self._staging: dict[str, torch.Tensor] = {}
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
        """
        import torch

        if not self._prepared or self._task is None:
            raise RuntimeError("call build_batch_provider() before iterate()")
        if self._scheduler is None or optimizer is not self._optimizer:
            raise RuntimeError("iterate() needs the optimizer that create_optimizer() returned")
        self.device = torch.device(device)
        return self._iterate(num_iterations, model, optimizer, self.device)

    # -- state and context -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The warmup schedule, :attr:`generator` and :meth:`batch_state_dict`.

        The data state is the one from before the batch of :attr:`iteration` was drawn (it is
        requested ahead), so that a resumed run draws that batch again.
        """
        state = dict(self._pending_state)
        if self._scheduler is not None:
            state["scheduler"] = self._scheduler.state_dict()
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
            {key: state[key] for key in ("scheduler", *_DATA_STATE) if key in state}
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
        self._staging.clear()
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

    def _take_batch(self, index: int) -> Batch:
        """Batch ``index``: the one requested ahead, or a new one."""
        prefetched = self._prefetched
        if prefetched is not None and prefetched.index == index:
            self._prefetched = None
            return prefetched.batch
        self._drop_prefetched(rewind=False)
        return self.next_batch(index)

    def _prefetch(self, index: int) -> _Prefetched:
        """Request batch ``index`` ahead, remembering the data state from before it."""
        restore_point = self._data_state()
        self._prefetched = _Prefetched(index, self.next_batch(index), restore_point)
        return self._prefetched

    def _drop_prefetched(self, *, rewind: bool) -> None:
        """Release the batch requested ahead; with ``rewind``, undo its draws."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is None:
            return
        prefetched.batch.release()
        if rewind:
            self._pending_state.update(prefetched.restore_point)
            self._apply_pending_state()

    def _to_device(
        self, batch: Batch, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """raw, target and weight of ``batch`` on ``device``."""
        return (
            self._moved("raw", batch.raw, device),
            self._moved("target", batch.target, device),
            self._moved("weight", batch.weight, device),
        )

    def _moved(self, name: str, tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``tensor`` on ``device``: itself where it is there; from the host to CUDA through a
        reused pinned buffer and a non-blocking copy (the host memory is free once it returns)."""
        import torch

        if tensor.device.type == device.type and device.type == "cpu":
            return tensor
        if tensor.device.type == "cpu" and device.type == "cuda" and not tensor.is_pinned():
            staging = self._staging.get(name)
            if staging is None or staging.shape != tensor.shape or staging.dtype != tensor.dtype:
                staging = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
                self._staging[name] = staging
            # The previous copy out of this buffer has finished: the last step read its loss.
            staging.copy_(tensor)
            tensor = staging
        return tensor.to(device, non_blocking=True)

    def _step(
        self,
        model: Model,
        optimizer: torch.optim.Optimizer,
        inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        *,
        keep_gradients: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on ``inputs``; returns the loss and the prediction (not synced).

        With ``keep_gradients`` the prediction keeps its gradient (d loss / d prediction).
        """
        import torch

        assert self._task is not None and self._scheduler is not None
        raw, target, weight = inputs
        optimizer.zero_grad(set_to_none=True)
        prediction = model(raw)
        if keep_gradients and prediction.requires_grad:
            prediction.retain_grad()
        loss = self._task.loss.compute(prediction, target, weight)
        torch.autograd.backward(loss)
        optimizer.step()
        self._scheduler.step()
        return loss, prediction

    def _write_snapshot(self, iteration: int, batch: Batch, prediction: torch.Tensor) -> None:
        container = self._snapshot_container
        assert container is not None
        arrays = {
            "raw": batch.raw,
            "gt": batch.gt,
            "target": batch.target,
            "weight": batch.weight,
            "prediction": prediction,
            "gradients": prediction.grad,
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
        model.train()
        ahead: _Prefetched | None = None
        started = time.perf_counter()
        try:
            for step in range(num_iterations):
                iteration = self.iteration
                batch = self._take_batch(iteration)
                try:
                    snapshot = self.snapshot_due(iteration)
                    inputs = self._to_device(batch, device)
                    loss, prediction = self._step(model, optimizer, inputs, keep_gradients=snapshot)
                    if snapshot:
                        self._write_snapshot(iteration, batch, prediction)
                finally:
                    batch.release()
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
