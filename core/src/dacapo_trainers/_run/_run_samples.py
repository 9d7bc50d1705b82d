"""RunSamples: the IterableDataset that :func:`~dacapo_trainers.iterable_dataset` returns.

Imports torch (only :func:`~dacapo_trainers.iterable_dataset` imports this module). A module
of its own so that the class pickles by name, as DataLoader workers started by ``spawn``
(the default on macOS and Windows) need.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from .._arrays._zarr_io import ZarrContainer
from .._batches._batch import Batch
from .._batches._batch_trainer import BatchTrainer
from .._configs._run_config import RunConfig
from .._errors import CannotTrainError
from .._plugins._registry import Registry, default_registry
from ._iterable_dataset import stream_config, worker_seed
from ._run_inputs import _built, build_task_and_model, open_datasets


class RunSamples(torch.utils.data.IterableDataset[dict[str, torch.Tensor]]):
    """The endless per-sample stream of a run (see :func:`~dacapo_trainers.iterable_dataset`)."""

    def __init__(
        self, run: RunConfig, *, registry: Registry | None = None, source: str | None = None
    ) -> None:
        self.run = run
        self.source = source
        # The default registry is found again in a spawned worker; a given one travels along.
        self._registry = registry if registry is not default_registry() else None

    @property
    def registry(self) -> Registry:
        """Where config types are looked up."""
        return self._registry if self._registry is not None else default_registry()

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        return self._stream(worker_seed(self.run.effective_seed, worker))

    def _stream(self, seed: int) -> Iterator[dict[str, torch.Tensor]]:
        with tempfile.TemporaryDirectory(prefix="dacapo-trainers-samples-") as scratch:
            trainer = self._prepared_trainer(seed, ZarrContainer(Path(scratch) / "unused.zarr"))
            try:
                with trainer:
                    index = 0
                    while True:
                        batch = trainer.next_batch(index)
                        try:
                            samples = split_batch(batch)
                        finally:
                            batch.release()
                        yield from samples
                        index += 1
            finally:
                trainer.close()

    def _prepared_trainer(self, seed: int, snapshots: ZarrContainer) -> BatchTrainer:
        """The run's batch trainer, seeded with ``seed``, its batch provider built.

        ``snapshots`` lets :meth:`~dacapo_trainers.BatchTrainer.snapshot_due` say that gt and
        mask are wanted in every batch (the contract's signal for them); only ``iterate()``
        writes snapshots, so nothing is written there.
        """
        run, registry, source = self.run, self.registry, self.source
        config = stream_config(run)
        trainer = _built("$.trainer_config", config, registry, source, config.build_trainer)
        assert isinstance(trainer, BatchTrainer), "iterable_dataset() checked the type"
        trainer.seed = seed
        datasets = open_datasets(run, registry, source)
        reason = trainer.cannot_train_reason(datasets)
        if reason is not None:
            names = ", ".join(repr(dataset.name) for dataset in datasets)
            raise CannotTrainError(
                f"{type(config).__name__} {config.name!r} cannot make samples of datasets "
                f"{names}: {reason}"
            )
        with torch.random.fork_rng(devices=[]):  # weight init: leave the caller's generator be
            task, model = build_task_and_model(run, registry, source)
        # With the model known, the trainer refuses data by its reason or by a ValueError.
        problem = trainer.cannot_train_model_reason(datasets, model, task)
        cause: ValueError | None = None
        if problem is None:
            try:
                trainer.build_batch_provider(datasets, model, task, snapshots)
            except ValueError as error:
                problem, cause = str(error), error
        if problem is not None:
            trainer.close()
            raise CannotTrainError(
                f"{type(config).__name__} {config.name!r} cannot make samples: {problem}"
            ) from cause
        return trainer


def split_batch(batch: Batch) -> list[dict[str, torch.Tensor]]:
    """The samples of ``batch`` as dicts of tensors that own their memory (the batch's may be
    a buffer its producer reuses once released)."""
    size = batch.geometry.batch_size
    spatial = batch.geometry.dims
    samples = []
    for index in range(size):
        target = _sample(batch.target, index)
        mask = (
            _sample(batch.mask, index)
            if batch.mask is not None
            else torch.ones(target.shape[-spatial:], dtype=torch.uint8)
        )
        samples.append(
            {
                "raw": _sample(batch.raw, index),
                "gt": _sample(batch.gt, index),
                "mask": mask,
                "target": target,
                "weight": _sample(batch.weight, index),
            }
        )
    return samples


def _sample(values: Any, index: int) -> torch.Tensor:
    """Sample ``index`` of a batch array (numpy or torch), copied to the host."""
    if isinstance(values, torch.Tensor):
        return values[index].detach().to("cpu", copy=True)
    if values is None:
        raise ValueError("the trainer gave no gt for a batch whose snapshot was due")
    return torch.from_numpy(np.array(values[index], copy=True))
