"""SimpleTensorTrainer: batches cut from in-memory tensors, one optimizer step per iteration."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LinearLR

from dacapo_trainers import (
    Dataset,
    LocalContainerIdentifier,
    Model,
    Task,
    Trainer,
    TrainingIterationStats,
    linear_warmup,
)

from ._config import SimpleTensorTrainerConfig
from ._sampling import BatchSampler
from ._snapshot import write_snapshot
from ._volumes import (
    batch_shape_problem,
    budget_problem,
    estimate_nbytes,
    geometry_problem,
    load_volume,
    model_problem,
)


class SimpleTensorTrainer(Trainer):
    """Trains from whole volumes held as tensors; see :class:`SimpleTensorTrainerConfig`.

    Life cycle: :meth:`create_optimizer` (optimizer and warmup schedule),
    :meth:`build_batch_provider` (reads every dataset, computes targets and weights once),
    then :meth:`iterate`. The batches are drawn from a ``torch.Generator`` seeded with
    :attr:`seed` (drawn once from torch's global generator when None); with
    :meth:`state_dict` / :meth:`load_state_dict` a resumed run repeats an uninterrupted one
    bit for bit.
    """

    trainer_config: SimpleTensorTrainerConfig

    def __init__(self, trainer_config: SimpleTensorTrainerConfig) -> None:
        super().__init__(trainer_config)
        self._sampler: BatchSampler | None = None
        self._task: Task | None = None
        self._snapshot_container: LocalContainerIdentifier | None = None
        self._generator: torch.Generator | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._scheduler: LinearLR | None = None
        self._device: torch.device | None = None
        # State loaded before the piece it belongs to exists; applied when it is created.
        self._pending_state: dict[str, Any] = {}

    # -- DaCapo's API ------------------------------------------------------------------------

    def create_optimizer(self, model: Model) -> torch.optim.Optimizer:
        """The configured optimizer for ``model``, with its linear warmup schedule.

        The schedule is kept on the trainer and stepped once per iteration by :meth:`iterate`.
        """
        config = self.trainer_config
        optimizer_class = getattr(torch.optim, config.optimizer)
        optimizer: torch.optim.Optimizer = optimizer_class(
            model.parameters(), lr=self.learning_rate, weight_decay=config.weight_decay
        )
        self._scheduler = linear_warmup(
            optimizer, config.warmup_iterations, config.warmup_start_factor
        )
        if "scheduler" in self._pending_state:
            self._scheduler.load_state_dict(self._pending_state.pop("scheduler"))
        self._optimizer = optimizer
        return optimizer

    def cannot_train_reason(self, datasets: Sequence[Dataset]) -> str | None:
        """Why these datasets cannot be trained on, or None.

        Refused: no datasets, a dataset without gt, gt not on raw's grid or one finer by an
        integer factor (for a model that upsamples), a mask not on gt's grid, a sample point
        outside the gt, voxel sizes or gt channels that differ across datasets, and volumes
        whose estimated size exceeds ``memory_budget_gb``. Whether each dataset is larger
        than the model's input, and gt on the grid the model predicts on
        (``model.scale``), are checked by :meth:`build_batch_provider`.
        """
        if not datasets:
            return "there are no training datasets"
        for dataset in datasets:
            problem = geometry_problem(dataset)
            if problem is not None:
                return problem
        problem = batch_shape_problem(datasets)
        if problem is not None:
            return problem
        estimate = sum(estimate_nbytes(dataset) for dataset in datasets)
        return budget_problem(estimate, self.trainer_config.memory_budget_gb, estimated=True)

    def build_batch_provider(
        self,
        datasets: Sequence[Dataset],
        model: Model,
        task: Task,
        snapshot_container: LocalContainerIdentifier | None = None,
    ) -> None:
        """Read every dataset whole and compute its target and weight once.

        Raises :class:`ValueError` with the reason where the datasets cannot be trained on
        (see :meth:`cannot_train_reason`), where a dataset is smaller than the model's input,
        or where the volumes really need more than ``memory_budget_gb``.
        """
        reason = self.cannot_train_reason(datasets)
        if reason is not None:
            raise ValueError(reason)
        self.close()
        volumes = [load_volume(dataset, task.predictor) for dataset in datasets]
        nbytes = sum(volume.nbytes for volume in volumes)
        problem = budget_problem(nbytes, self.trainer_config.memory_budget_gb, estimated=False)
        if problem is not None:
            raise ValueError(problem)
        problem = model_problem(volumes, model)
        if problem is not None:
            raise ValueError(problem)
        config = self.trainer_config
        self._sampler = BatchSampler(
            volumes,
            model.input_shape,
            model.output_shape,
            self.batch_size,
            flips=config.flips,
            transposes=config.transposes,
        )
        self._task = task
        self._snapshot_container = snapshot_container
        self._device = None
        if self._generator is None:
            seed = self.seed
            if seed is None:
                seed = int(torch.randint(0, 2**62, ()).item())
            self._generator = torch.Generator().manual_seed(seed)
        if "generator" in self._pending_state:
            self._generator.set_state(self._pending_state.pop("generator"))

    def iterate(
        self,
        num_iterations: int,
        model: Model,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        """Run ``num_iterations`` steps from :attr:`iteration`, yielding each one's stats.

        ``model`` must already be on ``device``; ``optimizer`` must be the one
        :meth:`create_optimizer` returned. The volumes move to ``device`` first (once).
        After the step of iteration ``i``, a snapshot is written when ``snapshot_interval``
        is set, a snapshot container was given and ``(i + 1) % snapshot_interval == 0``.
        """
        if self._sampler is None or self._task is None or self._generator is None:
            raise RuntimeError("call build_batch_provider() before iterate()")
        if self._scheduler is None or optimizer is not self._optimizer:
            raise RuntimeError("iterate() needs the optimizer that create_optimizer() returned")
        self._to_device(torch.device(device))
        return self._iterate(num_iterations, model, optimizer)

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The warmup schedule's state and the batch generator's state."""
        state = dict(self._pending_state)
        if self._scheduler is not None:
            state["scheduler"] = self._scheduler.state_dict()
        if self._generator is not None:
            state["generator"] = self._generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state, before or after the optimizer and batches exist."""
        if "scheduler" in state:
            if self._scheduler is not None:
                self._scheduler.load_state_dict(state["scheduler"])
            else:
                self._pending_state["scheduler"] = state["scheduler"]
        if "generator" in state:
            generator_state = torch.as_tensor(state["generator"]).cpu()
            if self._generator is not None:
                self._generator.set_state(generator_state)
            else:
                self._pending_state["generator"] = generator_state

    def close(self) -> None:
        """Release the volumes and the task. Safe to call more than once."""
        self._sampler = None
        self._task = None
        self._snapshot_container = None
        self._device = None

    # -- internals ---------------------------------------------------------------------------

    def _to_device(self, device: torch.device) -> None:
        assert self._sampler is not None
        if self._device == device:
            return
        for volume in self._sampler.volumes:
            volume.to(device)
        self._device = device

    def _snapshot_due(self, iteration: int) -> bool:
        interval = self.trainer_config.snapshot_interval
        return (
            interval is not None
            and self._snapshot_container is not None
            and (iteration + 1) % interval == 0
        )

    def _iterate(
        self, num_iterations: int, model: Model, optimizer: torch.optim.Optimizer
    ) -> Iterator[TrainingIterationStats]:
        sampler, task, generator, scheduler = (
            self._sampler,
            self._task,
            self._generator,
            self._scheduler,
        )
        assert sampler is not None and task is not None
        assert generator is not None and scheduler is not None
        model.train()
        for _ in range(num_iterations):
            start = time.perf_counter()
            iteration = self.iteration
            plans = sampler.draw(generator)
            raw, target, weight = sampler.batch(plans)
            optimizer.zero_grad()
            prediction = model(raw)
            loss = task.loss.compute(prediction, target, weight)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_value = loss.item()
            if self._snapshot_due(iteration):
                assert self._snapshot_container is not None
                arrays = {"raw": raw, "target": target, "weight": weight, "prediction": prediction}
                write_snapshot(self._snapshot_container, iteration, sampler, plans, arrays)
                self.report_snapshot(iteration, self._snapshot_container)
            stats = TrainingIterationStats(
                iteration=iteration, loss=loss_value, time=time.perf_counter() - start
            )
            self.iteration = iteration + 1
            yield stats
