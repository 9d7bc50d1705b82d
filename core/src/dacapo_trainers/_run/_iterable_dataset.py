"""``iterable_dataset(run)``: a run's training samples as a ``torch.utils.data.IterableDataset``.

DaCapo's main branch replaced its Trainer by ``TrainerConfig.iterable_dataset(...)``: an endless
stream of per-sample dicts that a plain ``torch.utils.data.DataLoader`` batches. This module
gives the same for any installed batch trainer (:class:`~dacapo_trainers.BatchTrainer`), so a
user's own loop (plain torch, Lightning, Accelerate) trains on a run's data exactly as the
trainer would make it. Importing it imports no torch; :func:`iterable_dataset` does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._configs._loading import load_config
from .._configs._run_config import RunConfig
from .._errors import ConfigError, ConfigIssue
from .._plugins._registry import Registry, default_registry
from ._run_inputs import describe

if TYPE_CHECKING:
    import torch.utils.data

#: The keys of every sample: DaCapo main's.
SAMPLE_KEYS = ("raw", "gt", "mask", "target", "weight")


def iterable_dataset(
    run: RunConfig | str | Path, *, registry: Registry | None = None
) -> torch.utils.data.IterableDataset[dict[str, torch.Tensor]]:
    """The training samples of ``run`` as an endless ``torch.utils.data.IterableDataset``.

    Each item is one sample, a dict of tensors as DaCapo main's ``iterable_dataset`` yields
    them: ``raw`` ``(C, *input_shape)`` float32, ``gt`` (the dataset's labels, ``(*output)``
    or ``(C, *output)``), ``mask`` ``(*output)`` (ones where the dataset has no mask),
    ``target`` and ``weight`` ``(C, *output)`` float32. They are the samples the run's
    trainer makes (its sampling, augments, the task's target and weight); a
    ``torch.utils.data.DataLoader(dataset, batch_size=N, num_workers=K)`` batches them.

    **Workers and seeds.** Every DataLoader worker (``torch.utils.data.get_worker_info``)
    makes its own stream: worker 0, and the process itself when ``num_workers`` is 0, with
    the run's seed (``seed + repetition``), so that its samples are those ``dacapo-trainers
    train`` draws, in order; worker ``k`` with a seed derived from the run's seed and ``k``.
    The same run, seed and ``num_workers`` give the same samples; change ``seed`` (or
    ``repetition``) for others. Each new iteration over the dataset starts the streams anew.
    Batches are made inside the worker (the trainer's own data worker processes are not
    started), so no process outlives the DataLoader's workers.

    :param run: a :class:`~dacapo_trainers.RunConfig`, or the path of a run file.
    :param registry: where config types are looked up (default: the installed plugins).
    :raises ConfigError: the file does not hold a valid run, or its trainer is not a batch
        trainer. Data problems (a dataset that cannot be opened or is too small) are raised
        when iteration starts, as :class:`ConfigError` or
        :class:`~dacapo_trainers.CannotTrainError`.
    """
    from .._batches._batch_trainer import BatchTrainer

    registry = registry if registry is not None else default_registry()
    source = None
    if not isinstance(run, RunConfig):
        source = str(run)
        run = load_config(run, RunConfig, registry=registry)
    config = run.resolved_trainer_config()
    if not issubclass(config.resolve_trainer_type(), BatchTrainer):
        raise ConfigError(
            [
                ConfigIssue(
                    "$.trainer_config",
                    f"{describe(config, registry)} is not a batch trainer (BatchTrainer), "
                    "which iterable_dataset needs to make samples; choose one that is, such "
                    "as GunpowderTrainerConfig or SimpleTensorTrainerConfig",
                )
            ],
            source,
        )
    from ._run_samples import RunSamples

    return RunSamples(run, registry=registry, source=source)


def worker_seed(seed: int, worker: int) -> int:
    """The seed of DataLoader worker ``worker``'s stream: ``seed`` itself for worker 0, else a
    hash of both (below 2**63, as every generator takes)."""
    if worker == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}:{worker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def stream_config(run: RunConfig) -> Any:
    """The trainer config a sample stream runs: the run's, with batches made in the calling
    process (its ``num_workers`` setting 0) and ``gt`` and ``mask`` asked for in every batch
    (``snapshot_interval`` 1: the contract's signal; nothing is written, since snapshots are
    written by ``iterate`` only)."""
    import attrs

    config = run.resolved_trainer_config()
    changes: dict[str, Any] = {}
    workers = config.run_fields.get("num_workers")
    if workers is not None:
        changes[workers] = 0
    snapshots = config.run_fields.get("snapshot_interval")
    if snapshots is not None:
        changes[snapshots] = 1
    return attrs.evolve(config, **changes) if changes else config
