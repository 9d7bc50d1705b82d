"""GunpowderTrainer: DaCapo's gunpowder trainer with batches produced ahead in worker processes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
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

from ._geometry import channels, datasets_problem, mask_channels
from ._locations import NoValidLocationError
from ._pipeline import (
    BatchLayout,
    Geometry,
    LoadedDataset,
    PipelineSpec,
    check_sampler,
    geometry_of,
    location_sampler,
    preload,
    scaled_voxel_size,
)
from ._snapshot import write_snapshot
from ._trainer_config import GunpowderTrainerConfig
from ._workers import InlineBatches, LoanedBatch, WorkerPool


class GunpowderTrainer(Trainer):
    """Trains from a gunpowder pipeline; see :class:`GunpowderTrainerConfig`.

    Life cycle: :meth:`create_optimizer` (RAdam with DaCapo's linear warmup),
    :meth:`build_batch_provider` (checks the datasets, reads small arrays into memory, builds
    the location samplers), then, inside ``with trainer:``, :meth:`iterate`. The data workers
    start on ``__enter__`` (or on the first :meth:`iterate`), producing batches from
    :attr:`iteration` on, and are all gone after ``__exit__`` / :meth:`close`.

    Batch ``i`` is a function of :attr:`seed` and ``i`` only (not of the worker that makes it
    or of ``num_data_fetchers``), so a resumed run sees the batches an uninterrupted one would.
    """

    trainer_config: GunpowderTrainerConfig

    def __init__(self, trainer_config: GunpowderTrainerConfig) -> None:
        super().__init__(trainer_config)
        self._spec: PipelineSpec | None = None
        self._layout: BatchLayout | None = None
        self._task: Task | None = None
        self._model_shapes: Geometry | None = None
        self._snapshot_container: LocalContainerIdentifier | None = None
        self._batches: WorkerPool | InlineBatches | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._scheduler: LinearLR | None = None
        self._pinned: dict[str, torch.Tensor] = {}
        # State loaded before the piece it belongs to exists; applied when it is created.
        self._pending_state: dict[str, Any] = {}

    # -- DaCapo's API ------------------------------------------------------------------------

    def create_optimizer(self, model: Model) -> torch.optim.Optimizer:
        """RAdam (decoupled weight decay, as DaCapo) with a linear learning-rate warmup.

        The warmup goes from ``warmup_start_factor`` times the learning rate to the learning
        rate over ``warmup_iterations`` (DaCapo: 0.01 and 1000); it is stepped once per
        iteration by :meth:`iterate` and saved by :meth:`state_dict`.
        """
        config = self.trainer_config
        optimizer = torch.optim.RAdam(
            model.parameters(), lr=self.learning_rate, decoupled_weight_decay=True
        )
        self._scheduler = linear_warmup(
            optimizer, config.warmup_iterations, config.warmup_start_factor
        )
        if "scheduler" in self._pending_state:
            self._scheduler.load_state_dict(self._pending_state.pop("scheduler"))
        self._optimizer = optimizer
        return optimizer

    def cannot_train_reason(
        self, datasets: Sequence[Dataset], model: Model | None = None
    ) -> str | None:
        """Why these datasets cannot be trained on, or None.

        Refused: no datasets; a dataset without gt; datasets whose raw voxel sizes differ (the
        pipeline samples all of them on the first one's grid, as DaCapo); gt whose voxel size
        is not the model's output voxel size (``model.scale(raw voxel size)`` for a model
        that has ``scale``, else raw's; without ``model``, gt and raw voxel sizes must be
        integer multiples of one another), a mask on another grid than its gt; raw that does
        not overlap its gt; a sample point outside the gt; datasets whose raw channels, gt
        voxel size, gt channels or mask channels differ. With ``model`` (the driver does not
        pass it; :meth:`build_batch_provider` does), also raw smaller than the model input
        along some axis, or with a channel count the model does not take. Whether a dataset
        has a valid location is checked when the samplers are built.
        """
        output_voxel = None
        if model is not None and datasets:
            output_voxel = scaled_voxel_size(model, datasets[0].raw.voxel_size)
        return datasets_problem(datasets, output_voxel, model)

    def build_batch_provider(
        self,
        datasets: Sequence[Dataset],
        model: Model,
        task: Task,
        snapshot_container: LocalContainerIdentifier | None = None,
    ) -> None:
        """Prepare the pipeline: arrays, location samplers, batch layout. Starts no process.

        Raises :class:`ValueError` with the reason where the datasets cannot be trained on
        (see :meth:`cannot_train_reason`, here with the model) or where a dataset has no
        valid location (a masked centre, ``gt_min_reject``, the optional fraction rules).
        """
        reason = self.cannot_train_reason(datasets, model)
        if reason is not None:
            raise ValueError(reason)
        self.close()
        config = self.trainer_config
        limit = config.preload_limit_mb * 2**20
        loaded = [_preloaded(dataset, limit) for dataset in datasets]
        samplers = [location_sampler(dataset, config) for dataset in loaded]
        geometry = geometry_of(loaded, model)
        for sampler in samplers:
            try:
                check_sampler(sampler, geometry)
            except NoValidLocationError as error:
                raise ValueError(str(error)) from error
        seed = self.seed
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) >> 1
        gt_dtype = np.result_type(*[dataset.gt.dtype for dataset in loaded])  # type: ignore[union-attr]
        self._spec = PipelineSpec(
            datasets=loaded,
            samplers=samplers,
            task=task,
            augments=list(config.augments),
            geometry=geometry,
            clip_raw=config.clip_raw,
            batch_size=self.batch_size,
            seed=seed,
            gt_dtype=np.dtype(gt_dtype),
            raw_channels=channels(loaded[0].raw),
            gt_channels=channels(loaded[0].gt),  # type: ignore[arg-type]
            mask_channels=mask_channels(loaded[0]),
        )
        self._layout = self._spec.layout()
        self._task = task
        self._model_shapes = geometry
        self._snapshot_container = snapshot_container

    def iterate(
        self,
        num_iterations: int,
        model: Model,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        """Run ``num_iterations`` steps from :attr:`iteration`, yielding each one's stats.

        ``model`` must already be on ``device``. ``stats.time`` is the wall time of the whole
        iteration, waiting for its batch included. After the step of iteration ``i`` a
        snapshot is written when ``snapshot_interval`` is set, a snapshot container was given
        and ``(i + 1) % snapshot_interval == 0``.
        """
        if self._spec is None or self._task is None:
            raise RuntimeError("call build_batch_provider() before iterate()")
        if self._scheduler is None or optimizer is not self._optimizer:
            raise RuntimeError("iterate() needs the optimizer that create_optimizer() returned")
        return self._iterate(num_iterations, model, optimizer, torch.device(device))

    # -- context, state ----------------------------------------------------------------------

    def __enter__(self) -> GunpowderTrainer:
        """Start the data workers (batches from :attr:`iteration` on)."""
        if self._spec is not None:
            self._start_batches(self.iteration)
        return self

    def close(self) -> None:
        """Stop and wait for every data worker. Safe to call more than once."""
        batches, self._batches = self._batches, None
        if batches is not None:
            batches.close()

    def state_dict(self) -> dict[str, Any]:
        """The warmup schedule's state."""
        state = dict(self._pending_state)
        if self._scheduler is not None:
            state["scheduler"] = self._scheduler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state, before or after the optimizer exists."""
        if "scheduler" in state:
            if self._scheduler is not None:
                self._scheduler.load_state_dict(state["scheduler"])
            else:
                self._pending_state["scheduler"] = state["scheduler"]

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the running data workers (empty when none run)."""
        return self._batches.pids if isinstance(self._batches, WorkerPool) else []

    # -- internals ---------------------------------------------------------------------------

    def _start_batches(self, start_index: int) -> WorkerPool | InlineBatches:
        assert self._spec is not None and self._layout is not None
        if self._batches is not None and self._batches.next_index == start_index:
            return self._batches
        self.close()
        workers = self.trainer_config.num_data_fetchers
        if workers == 0:
            self._batches = InlineBatches(self._spec, self._layout, start_index)
        else:
            self._batches = WorkerPool(
                self._spec,
                self._layout,
                num_workers=workers,
                depth=self.trainer_config.prefetch_batches,
                start_index=start_index,
            )
        return self._batches

    def _snapshot_due(self, iteration: int) -> bool:
        interval = self.trainer_config.snapshot_interval
        return (
            interval is not None
            and self._snapshot_container is not None
            and (iteration + 1) % interval == 0
        )

    def _tensors(self, batch: LoanedBatch, device: torch.device) -> dict[str, torch.Tensor]:
        """raw, target, weight as tensors on ``device``; no copy on CPU."""
        tensors = {}
        for name in ("raw", "target", "weight"):
            host = torch.from_numpy(batch.arrays[name])
            if device.type == "cpu":
                tensors[name] = host
                continue
            pinned = self._pinned.get(name)
            if pinned is None or pinned.shape != host.shape:
                pinned = torch.empty(host.shape, dtype=host.dtype, pin_memory=True)
                self._pinned[name] = pinned
            pinned.copy_(host)
            tensors[name] = pinned.to(device, non_blocking=True)
        return tensors

    def _iterate(
        self,
        num_iterations: int,
        model: Model,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        task, scheduler = self._task, self._scheduler
        assert task is not None and scheduler is not None and self._model_shapes is not None
        model.train()
        for _ in range(num_iterations):
            start = time.perf_counter()
            iteration = self.iteration
            batches = self._start_batches(iteration)
            batch = batches.get(iteration)
            try:
                tensors = self._tensors(batch, device)
                if device.type != "cpu" and not self._snapshot_due(iteration):
                    batch.release()  # copied to pinned memory: the slot can be refilled now
                optimizer.zero_grad(set_to_none=True)
                prediction = model(tensors["raw"])
                loss = task.loss.compute(prediction, tensors["target"], tensors["weight"])
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_value = loss.item()
                if self._snapshot_due(iteration):
                    assert self._snapshot_container is not None
                    arrays = dict(batch.arrays)
                    arrays["prediction"] = prediction.detach().cpu().numpy()
                    write_snapshot(self._snapshot_container, iteration, self._model_shapes, arrays)
                    self.report_snapshot(iteration, self._snapshot_container)
            finally:
                batch.release()
            stats = TrainingIterationStats(
                iteration=iteration, loss=loss_value, time=time.perf_counter() - start
            )
            self.iteration = iteration + 1
            yield stats


def _preloaded(dataset: Dataset, limit: float) -> Dataset:
    """``dataset`` with arrays up to ``limit`` bytes read into memory (a shallow copy)."""
    return LoadedDataset(
        name=dataset.name,
        raw=preload(dataset.raw, limit),
        gt=preload(dataset.gt, limit) if dataset.gt is not None else None,
        mask=preload(dataset.mask, limit) if dataset.mask is not None else None,
        weight=dataset.weight,
        sample_points=dataset.sample_points,
    )
