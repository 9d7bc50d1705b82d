"""DistributedTrainer: the inner trainer on every rank, its model wrapped in DDP."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import torch

from dacapo_trainers import (
    Dataset,
    LocalContainerIdentifier,
    Model,
    RunLaunch,
    Task,
    Trainer,
    TrainingIterationStats,
)

from ._config import DistributedTrainerConfig
from ._launch import launch_workers, resource_shortage
from ._model import DistributedModel
from ._process_group import ProcessGroup, env_rank, in_torchrun, is_communication_error
from ._seeding import rank_seed


class DistributedTrainer(Trainer):
    """Runs the inner trainer on every rank; see :class:`DistributedTrainerConfig`.

    Life cycle, as the training driver runs it on each rank:

    * :meth:`launch_run`: outside torchrun, starts the workers and returns their exit status;
      inside, joins the process group and returns None.
    * :meth:`build_batch_provider`: the inner's, with the inner's ``seed`` derived from
      (run seed, rank) so that ranks draw different batches, and snapshots on rank 0 only.
    * :meth:`iterate`: wraps the model in ``DistributedDataParallel`` (after the driver has
      loaded the checkpoint on every rank) and runs the inner's ``iterate`` with it. Each
      yielded loss is the mean over the ranks (the loss of the whole effective batch).
    * :meth:`barrier` (around checkpoints): also collects every rank's inner state, so that
      :meth:`state_dict` on rank 0 holds all of them and each rank resumes its own.
    """

    trainer_config: DistributedTrainerConfig

    def __init__(self, trainer_config: DistributedTrainerConfig) -> None:
        self.inner = trainer_config.trainer_config.build_trainer()
        super().__init__(trainer_config)
        self.inner.add_snapshot_listener(self.report_snapshot)
        self.group: ProcessGroup | None = None
        self._model: DistributedModel | None = None
        self._wrapped: Any = None
        self._gathered: tuple[int, list[dict[str, Any]]] | None = None

    # -- topology ----------------------------------------------------------------------------

    @property  # type: ignore[override]
    def iteration(self) -> int:
        """The inner trainer's iteration (setting it sets the inner's)."""
        return self.inner.iteration

    @iteration.setter
    def iteration(self, value: int) -> None:
        self.inner.iteration = value

    @property
    def rank(self) -> int:
        """This process's global rank (0 in the launcher and outside a distributed run)."""
        return self.group.rank if self.group is not None else env_rank()

    @property
    def world_size(self) -> int:
        """The number of ranks (1 before joining)."""
        return self.group.world_size if self.group is not None else 1

    @property
    def is_output_process(self) -> bool:
        """Rank 0 writes checkpoints, stats, snapshots and progress.

        A launcher is one too (it claims the output folder for its workers), except the
        launcher of one machine of several: which machine holds rank 0 is known only after
        the rendezvous, so there the worker of rank 0 claims the folder itself.
        """
        if self.group is None and not in_torchrun() and self.trainer_config.is_multi_node:
            return False
        return self.rank == 0

    def launch_run(self, launch: RunLaunch) -> int | None:
        """Outside torchrun: train ``launch`` in every worker, return their exit status.

        Inside torchrun (``TORCHELASTIC_RUN_ID``, or ``RANK``/``WORLD_SIZE``/``MASTER_*`` set):
        join the process group with the configured backend and timeout; return None.
        """
        if self.group is not None:
            return None
        if not in_torchrun():
            return launch_workers(self.trainer_config, launch)
        self.group = ProcessGroup.join(self.trainer_config.backend, self.trainer_config.timeout)
        return None

    def barrier(self) -> None:
        """Wait for every rank, collecting every rank's inner state on the way.

        The driver calls it on all ranks before rank 0 alone calls :meth:`state_dict`; that
        is the one place where a collective can gather the ranks' states for the checkpoint.
        """
        if self.group is None or self.group.world_size == 1:
            return
        states = self.group.all_gather(self.inner.state_dict())
        self._gathered = (self.iteration, states)

    # -- DaCapo's API, delegated ----------------------------------------------------------------

    def create_optimizer(self, model: Model) -> torch.optim.Optimizer:
        """The inner trainer's optimizer (over the model's parameters, as DDP's)."""
        return self.inner.create_optimizer(model)

    def cannot_train_reason(self, datasets: Sequence[Dataset]) -> str | None:
        """Outside torchrun, workers that cannot fit this machine (more than its cores or
        GPUs, see :func:`resource_shortage`); else the inner trainer's reason."""
        if not in_torchrun():
            shortage = resource_shortage(self.trainer_config)
            if shortage is not None:
                return shortage
        return self.inner.cannot_train_reason(datasets)

    def cannot_train_model_reason(
        self, datasets: Sequence[Dataset], model: Model, task: Task
    ) -> str | None:
        """The inner trainer's reason."""
        return self.inner.cannot_train_model_reason(datasets, model, task)

    def can_train(self, datasets: Sequence[Dataset]) -> bool:
        """The inner trainer's answer."""
        return self.inner.can_train(datasets)

    def build_batch_provider(
        self,
        datasets: Sequence[Dataset],
        model: Model,
        task: Task,
        snapshot_container: LocalContainerIdentifier | None = None,
    ) -> None:
        """The inner's, seeded per rank, with the snapshot container on rank 0 only."""
        base = self.seed if self.seed is not None else int(torch.randint(0, 2**62, ()).item())
        self.inner.seed = rank_seed(base, self.rank)
        container = snapshot_container if self.is_output_process else None
        self.inner.build_batch_provider(datasets, model, task, container)

    def iterate(
        self,
        num_iterations: int,
        model: Model,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        """The inner's steps on the DDP-wrapped model; losses averaged over the ranks.

        Without a process group (``launch`` not called) the inner trainer runs alone.
        """
        if self.group is None:
            return self._delegate(self.inner.iterate(num_iterations, model, optimizer, device))
        wrapped = self._wrap(model, torch.device(device))
        return self._iterate(num_iterations, wrapped, optimizer, torch.device(device))

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Every rank's inner state (as gathered by the last :meth:`barrier`)."""
        own = self.inner.state_dict()
        if self._gathered is not None and self._gathered[0] == self.iteration:
            states = list(self._gathered[1])
        else:
            states = [own]
        states[self.rank if self.rank < len(states) else 0] = own
        return {"world_size": self.world_size, "ranks": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Give the inner trainer of this rank its own saved state.

        With fewer saved ranks than now (the run grew), rank ``r`` takes the state of rank
        ``r mod saved`` and so repeats its batches; a warning says so.
        """
        ranks = state.get("ranks")
        if ranks is None:  # a state without ranks: the inner's own
            self.inner.load_state_dict(state)
            return
        saved = len(ranks)
        if self.rank >= saved:
            warnings.warn(
                f"the checkpoint holds the data state of {saved} rank(s), this run has "
                f"{self.world_size}: rank {self.rank} resumes with rank {self.rank % saved}'s "
                "and repeats its batches; resume with the same number of ranks for an exact "
                "resume",
                stacklevel=2,
            )
        self.inner.load_state_dict(ranks[self.rank % saved])

    def close(self) -> None:
        """Close the inner trainer and drop the DDP wrapper. Safe to call more than once."""
        self.inner.close()
        self._model = None
        self._wrapped = None

    # -- internals ---------------------------------------------------------------------------

    def _wrap(self, model: Model, device: torch.device) -> DistributedModel:
        group = self.group
        assert group is not None
        if self._model is not None and self._wrapped is model:
            return self._model
        start = self.iteration
        group.mark("forward", start - 1)
        device_ids = None
        if device.type == "cuda":
            device_ids = [device.index if device.index is not None else torch.cuda.current_device()]

        def create() -> DistributedModel:
            return DistributedModel(
                model,
                on_forward=lambda: group.mark("forward", self.inner.iteration),
                device_ids=device_ids,
            )

        what = f"the start of training at iteration {start} (DDP's weight broadcast)"
        self._model = group.guarded(create, "forward", start - 1, what)
        self._wrapped = model
        return self._model

    def _delegate(
        self, steps: Iterator[TrainingIterationStats]
    ) -> Iterator[TrainingIterationStats]:
        try:
            yield from steps
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()

    def _iterate(
        self,
        num_iterations: int,
        model: DistributedModel,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        group = self.group
        assert group is not None
        steps = self.inner.iterate(num_iterations, model, optimizer, device)
        try:
            while True:
                iteration = self.iteration
                try:
                    stats = next(steps)
                except StopIteration:
                    return
                except Exception as error:
                    if not is_communication_error(error):
                        raise
                    what = f"the gradient all-reduce of iteration {iteration}"
                    raise group.failure(error, "forward", iteration, what) from error
                loss = group.guarded(
                    functools.partial(self._mean, stats.loss, device),
                    "forward",
                    stats.iteration,
                    f"the loss all-reduce of iteration {stats.iteration}",
                )
                yield attrs.evolve(stats, loss=loss)
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()

    def _mean(self, value: float, device: torch.device) -> float:
        import torch.distributed as dist

        on = device if device.type == "cuda" else torch.device("cpu")
        total = torch.tensor([value], dtype=torch.float64, device=on)
        dist.all_reduce(total)
        return float(total.item()) / self.world_size
