"""SimpleTensorTrainer: batches cut from in-memory tensors, one optimizer step per iteration."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dacapo_trainers import Batch, BatchTrainer, Dataset, Model, Task

from ._checks import (
    batch_shape_problem,
    budget_problem,
    estimate_nbytes,
    geometry_problem,
    model_problem,
)
from ._config import SimpleTensorTrainerConfig
from ._sampling import BatchSampler
from ._volumes import load_volume, reach_problem


class SimpleTensorTrainer(BatchTrainer):
    """Trains from volumes held as tensors; see :class:`SimpleTensorTrainerConfig`.

    A :class:`~dacapo_trainers.BatchTrainer`: :meth:`prepare_batches` reads what samples of
    every dataset can reach and computes its targets and weights once; :meth:`next_batch`
    draws the crops, flips and transposes of a batch from the trainer's generator and cuts
    them out of the volumes, which live on the training device from the first batch on. The
    base owns the optimizer (:meth:`build_optimizer`: the configured one), the warmup, the
    loop, snapshots and the state of an exact resume.
    """

    trainer_config: SimpleTensorTrainerConfig

    def __init__(self, trainer_config: SimpleTensorTrainerConfig) -> None:
        super().__init__(trainer_config)
        self._sampler: BatchSampler | None = None
        self._volumes_device: torch.device | None = None

    def build_optimizer(self, model: Model) -> torch.optim.Optimizer:
        """The configured ``torch.optim`` optimizer with the configured weight decay."""
        config = self.trainer_config
        optimizer_class = getattr(torch.optim, config.optimizer)
        optimizer: torch.optim.Optimizer = optimizer_class(
            model.parameters(), lr=self.learning_rate, weight_decay=config.weight_decay
        )
        return optimizer

    def cannot_train_reason(self, datasets: Sequence[Dataset]) -> str | None:
        """Why these datasets cannot be trained on, or None.

        Refused: no datasets, a dataset without gt, gt not on raw's grid or one finer by an
        integer factor (for a model that upsamples), a mask not on gt's grid, a sample point
        outside the gt, voxel sizes or gt channels that differ across datasets, and volumes
        whose estimated size exceeds ``memory_budget_gb``. What needs the model is
        :meth:`cannot_train_model_reason`'s.
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

    def cannot_train_model_reason(
        self, datasets: Sequence[Dataset], model: Model, task: Task
    ) -> str | None:
        """Why ``model`` cannot train on these datasets, or None: raw channels it does not
        take, gt off the grid it predicts on (``model.scale``; no resampling), or a dataset
        where no crop of its input and output shapes fits. Reads only metadata."""
        problem = model_problem(datasets, model)
        if problem is not None:
            return problem
        shapes = (tuple(model.input_shape), tuple(model.output_shape))
        problems = (reach_problem(dataset, shapes) for dataset in datasets)
        return next((problem for problem in problems if problem is not None), None)

    def prepare_batches(self, datasets: Sequence[Dataset], model: Model, task: Task) -> None:
        """Read what samples of every dataset can reach (gt and mask whole, raw where the
        model's input reaches around the gt) and compute its target and weight once.

        Raises :class:`ValueError` with the reason where the datasets cannot be trained on
        (see :meth:`cannot_train_reason` and :meth:`cannot_train_model_reason`) or where the
        volumes really need more than ``memory_budget_gb``.
        """
        reason = self.cannot_train_reason(datasets)
        if reason is None:
            reason = self.cannot_train_model_reason(datasets, model, task)
        if reason is not None:
            raise ValueError(reason)
        shapes = (tuple(model.input_shape), tuple(model.output_shape))
        volumes = [load_volume(dataset, task.predictor, shapes) for dataset in datasets]
        nbytes = sum(volume.nbytes for volume in volumes)
        problem = budget_problem(nbytes, self.trainer_config.memory_budget_gb, estimated=False)
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

    def next_batch(self, index: int) -> Batch:
        """Draw the plans of a batch from the trainer's generator and cut it out.

        The volumes move to the training device once, before the first batch; gt and mask
        (kept on the host) are cut only for batches a snapshot shows.
        """
        sampler = self._sampler
        assert sampler is not None, "the base calls prepare_batches() first"
        device = self.device if self.device is not None else torch.device("cpu")
        if self._volumes_device != device:
            for volume in sampler.volumes:
                volume.to(device)
            self._volumes_device = device
        plans = sampler.draw(self.generator)
        raw, target, weight = sampler.batch(plans)
        gt, mask = sampler.host_batch(plans) if self.snapshot_due(index) else (None, None)
        return Batch(raw, target, weight, sampler.geometry(plans), gt=gt, mask=mask)

    def close_batches(self) -> None:
        """Release the volumes. Safe to call more than once."""
        self._sampler = None
        self._volumes_device = None
