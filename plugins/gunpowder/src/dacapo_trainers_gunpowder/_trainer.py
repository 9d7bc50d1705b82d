"""GunpowderTrainer: DaCapo's gunpowder trainer with batches produced ahead in worker processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dacapo_trainers import (
    Batch,
    BatchGeometry,
    BatchTrainer,
    Dataset,
    Model,
    Task,
    output_voxel_size,
)

from ._geometry import channels, datasets_problem, mask_channels
from ._locations import NoValidLocationError
from ._pipeline import PipelineSpec
from ._preload import preload_datasets
from ._sample_geometry import SampleGeometry, geometry_of
from ._samplers import check_sampler, location_sampler
from ._shared_memory import BatchLayout
from ._trainer_config import GunpowderTrainerConfig
from ._worker_process import worker_niceness
from ._workers import InlineBatches, WorkerPool, start_method_problem


class GunpowderTrainer(BatchTrainer):
    """Trains from a gunpowder pipeline; see :class:`GunpowderTrainerConfig`.

    A :class:`~dacapo_trainers.BatchTrainer`, whose base owns the optimizer (DaCapo's RAdam
    with its linear warmup), the loop, snapshots and the restore order.
    :meth:`prepare_batches` checks the datasets, reads small arrays into memory and builds the
    location samplers; the data workers start on ``__enter__`` (:meth:`start_batches`, or on
    the first batch), producing batches from :attr:`iteration` on, and are all gone after
    ``__exit__`` / :meth:`close`.

    Batch ``i`` is a function of the pipeline seed (drawn from the trainer's generator, which
    :attr:`seed` seeds) and ``i`` only, not of the worker that makes it or of
    ``num_data_fetchers``, so a resumed run sees the batches an uninterrupted one would.
    """

    trainer_config: GunpowderTrainerConfig

    def __init__(self, trainer_config: GunpowderTrainerConfig) -> None:
        super().__init__(trainer_config)
        self._spec: PipelineSpec | None = None
        self._layout: BatchLayout | None = None
        self._batches: WorkerPool | InlineBatches | None = None

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
        along some axis, or with a channel count the model does not take (what
        :meth:`cannot_train_model_reason` answers). Whether a dataset has a valid location is
        checked when the samplers are built.
        """
        output_voxel = None
        if model is not None and datasets:
            output_voxel = output_voxel_size(model, datasets[0].raw.voxel_size)
        return datasets_problem(datasets, output_voxel, model)

    def cannot_train_model_reason(
        self, datasets: Sequence[Dataset], model: Model, task: Task
    ) -> str | None:
        """:meth:`cannot_train_reason` with the model: also gt off the grid the model predicts
        on, raw smaller than the model input, raw channels the model does not take. Reads
        only metadata; the driver asks before it writes anything."""
        return self.cannot_train_reason(datasets, model)

    def prepare_batches(self, datasets: Sequence[Dataset], model: Model, task: Task) -> None:
        """Prepare the pipeline: arrays, location samplers, batch layout. Starts no process.

        Raises :class:`ValueError` with the reason where the datasets cannot be trained on
        (see :meth:`cannot_train_model_reason`) or where a dataset has no
        valid location (a masked centre, ``gt_min_reject``, the optional fraction rules);
        with data workers, also where this platform cannot fork them or
        ``DACAPO_TRAINERS_GUNPOWDER_WORKER_NICENESS`` is not an integer from 0 to 19.
        """
        reason = self.cannot_train_model_reason(datasets, model, task)
        if reason is not None:
            raise ValueError(reason)
        config = self.trainer_config
        if config.num_data_fetchers > 0:
            problem = start_method_problem(multiprocessing.get_all_start_methods())
            if problem is not None:
                raise ValueError(problem)
            worker_niceness()  # a bad setting is refused here, before training
        geometry = geometry_of(datasets, model)
        limit = config.preload_limit_mb * 2**20
        loaded = preload_datasets(datasets, limit, geometry.input_size)
        samplers = [location_sampler(dataset, config) for dataset in loaded]
        for sampler in samplers:
            try:
                check_sampler(sampler, geometry)
            except NoValidLocationError as error:
                raise ValueError(str(error)) from error
        gt_dtype = np.result_type(*[dataset.gt.dtype for dataset in loaded])  # type: ignore[union-attr]
        self._spec = PipelineSpec(
            datasets=loaded,
            samplers=samplers,
            task=task,
            augments=list(config.augments),
            geometry=geometry,
            clip_raw=config.clip_raw,
            batch_size=self.batch_size,
            seed=self.draw_seed(),
            gt_dtype=np.dtype(gt_dtype),
            raw_channels=channels(loaded[0].raw),
            gt_channels=channels(loaded[0].gt),  # type: ignore[arg-type]
            mask_channels=mask_channels(loaded[0]),
        )
        self._layout = self._spec.layout()

    def start_batches(self, first_index: int) -> None:
        """Start the data workers, producing batches from ``first_index`` on."""
        self._start_batches(first_index)

    def next_batch(self, index: int) -> Batch:
        """Batch ``index`` from the workers: views of its shared-memory slot, no copy.

        On a CUDA device the slots are page-locked (registered once) and the batch says
        ``pinned``, so that the base copies it to the GPU asynchronously straight from the
        slot. The slot goes back to its worker when the base releases the batch (after that
        copy has completed).
        """
        producer = self._start_batches(index)
        producer.buffer.pin(self.device)
        loaned = producer.get(index)
        arrays = loaned.arrays
        assert self._spec is not None
        return Batch(
            raw=torch.from_numpy(arrays["raw"]),
            target=torch.from_numpy(arrays["target"]),
            weight=torch.from_numpy(arrays["weight"]),
            geometry=_batch_geometry(self._spec.geometry, arrays["location"]),
            gt=arrays["gt"],
            mask=arrays["mask"],
            on_release=loaned.release,
            pinned=loaned.pinned,
        )

    def close_batches(self) -> None:
        """Stop and wait for every data worker; drop the pipeline. Safe to call more than once."""
        batches, self._batches = self._batches, None
        if batches is not None:
            batches.close()
        self._spec = None
        self._layout = None

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the running data workers (empty when none run)."""
        return self._batches.pids if isinstance(self._batches, WorkerPool) else []

    # -- internals ---------------------------------------------------------------------------

    def _start_batches(self, start_index: int) -> WorkerPool | InlineBatches:
        """The batch producer, (re)started unless it makes ``start_index`` next already."""
        assert self._spec is not None and self._layout is not None
        if self._batches is not None and self._batches.next_index == start_index:
            return self._batches
        if self._batches is not None:
            self._batches.close()
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


def _batch_geometry(geometry: SampleGeometry, locations: np.ndarray[Any, Any]) -> BatchGeometry:
    """Where the samples lie: ``locations`` holds each sample's input crop offset (world)."""
    raw_offsets = [tuple(int(v) for v in location) for location in locations]
    output_offsets = [
        tuple(r + o for r, o in zip(offset, geometry.output_offset, strict=True))
        for offset in raw_offsets
    ]
    return BatchGeometry(
        raw_voxel_size=geometry.voxel_size,
        output_voxel_size=geometry.output_voxel_size,
        raw_offsets=raw_offsets,
        output_offsets=output_offsets,
    )
