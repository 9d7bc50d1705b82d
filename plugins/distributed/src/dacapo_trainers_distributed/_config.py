"""The config of the distributed trainer. Imports no torch: validating a config stays cheap."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from dacapo_trainers import TrainerConfig

#: The values ``DistributedTrainerConfig.backend`` accepts.
BACKENDS: tuple[str, ...] = ("auto", "gloo", "nccl")


def _inner_name(self: DistributedTrainerConfig) -> str:
    return self.trainer_config.name


def _inner_batch_size(self: DistributedTrainerConfig) -> int:
    return self.trainer_config.batch_size


def _inner_learning_rate(self: DistributedTrainerConfig) -> float:
    return self.trainer_config.learning_rate


@attrs.define(kw_only=True)
class DistributedTrainerConfig(TrainerConfig):
    """Data-parallel training around any trainer: wrap its config, change nothing else.

    Every process (*rank*) runs the inner trainer on its own batches; the model is wrapped in
    ``torch.nn.parallel.DistributedDataParallel``, which averages the gradients over the
    ranks in every step. ``dacapo-trainers train run.yaml`` starts the worker processes itself
    (through torchrun's launcher API); inside ``torchrun`` (or ``srun torchrun`` on SLURM) it
    joins the job that torchrun set up.

    ``batch_size`` is **per rank**: one step trains on ``batch_size x world_size`` samples.
    The inner config's ``batch_size`` and ``learning_rate`` are the authoritative ones; this
    config's ``name``, ``batch_size`` and ``learning_rate`` default to the inner's and, when
    given, must equal them. The learning rate is not scaled for you: with ``N`` ranks the
    effective batch is ``N`` times larger, and the usual starting point is to scale the
    learning rate linearly (``N * lr``, with a warmup) for SGD, or by ``sqrt(N)`` for Adam-type
    optimizers, and to check the loss curve.
    """

    trainer_type: ClassVar[str] = "dacapo_trainers_distributed._trainer:DistributedTrainer"

    trainer_config: TrainerConfig = attrs.field(
        metadata={
            "help_text": "The trainer that builds the batches and runs each step on every rank, "
            "selected by its '__type__' (any installed trainer but this one)."
        }
    )
    name: str = attrs.field(
        default=attrs.Factory(_inner_name, takes_self=True),
        metadata={"help_text": "A unique name for this trainer config (default: the inner's)."},
    )
    batch_size: int = attrs.field(
        default=attrs.Factory(_inner_batch_size, takes_self=True),
        metadata={
            "help_text": "Samples per rank in one step: the inner trainer_config's batch_size "
            "(the default; a different value is an error). One step trains on batch_size x "
            "world_size samples."
        },
    )
    learning_rate: float = attrs.field(
        default=attrs.Factory(_inner_learning_rate, takes_self=True),
        metadata={
            "help_text": "The inner trainer_config's learning_rate (the default; a different "
            "value is an error). It is not scaled with the number of ranks: set the inner's."
        },
    )
    backend: str = attrs.field(
        default="auto",
        metadata={
            "help_text": "torch.distributed backend: auto (nccl where CUDA is available, else "
            "gloo), gloo or nccl."
        },
    )
    timeout: float = attrs.field(
        default=600.0,
        metadata={
            "help_text": "Seconds a rank waits for the others in a collective (gradient "
            "all-reduce, barrier) and when joining; past it, the run stops with an error that "
            "names the rank that did not arrive, instead of hanging."
        },
    )
    nproc_per_node: int | None = attrs.field(
        default=None,
        metadata={
            "help_text": "Worker processes per machine. None: one per visible CUDA GPU, or 1 "
            "on a machine without CUDA (set it to use several CPU processes)."
        },
    )
    nnodes: int = attrs.field(
        default=1,
        metadata={
            "help_text": "Number of machines. Above 1, start the same command on every machine "
            "with the same rdzv_endpoint (or use torchrun / srun torchrun yourself)."
        },
    )
    max_nnodes: int | None = attrs.field(
        default=None,
        metadata={
            "help_text": "Elastic training: the most machines (torchrun's --nnodes "
            "MIN:MAX with MIN = nnodes). None: exactly nnodes."
        },
    )
    rdzv_endpoint: str | None = attrs.field(
        default=None,
        metadata={
            "help_text": "host:port of the rendezvous (one of the machines). None: a "
            "single-machine run on a free local port (torchrun --standalone)."
        },
    )
    rdzv_backend: str = attrs.field(
        default="c10d",
        metadata={"help_text": "torchrun's rendezvous backend (c10d, or etcd-v2, static)."},
    )
    rdzv_id: str | None = attrs.field(
        default=None,
        metadata={
            "help_text": "The job id every machine of one run shares. None: a fresh id for a "
            "single-machine run, 'dacapo-<name>' for several machines."
        },
    )
    max_restarts: int = attrs.field(
        default=0,
        metadata={
            "help_text": "How often torchrun restarts all workers after one fails; every "
            "restart resumes from the last checkpoint."
        },
    )

    @trainer_config.validator
    def _check_trainer_config(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, DistributedTrainerConfig):
            raise ValueError(
                "trainer_config is itself a DistributedTrainerConfig; wrap the trainer once"
            )

    @batch_size.validator
    def _check_batch_size(self, attribute: attrs.Attribute[int], value: int) -> None:
        inner = self.trainer_config.batch_size
        if value != inner:
            raise ValueError(
                f"batch_size {value} differs from the inner trainer_config's {inner}; the "
                "inner's is the per-rank batch size: set it there and leave this one out"
            )

    @learning_rate.validator
    def _check_learning_rate(self, attribute: attrs.Attribute[float], value: float) -> None:
        inner = self.trainer_config.learning_rate
        if value != inner:
            raise ValueError(
                f"learning_rate {value} differs from the inner trainer_config's {inner}; set "
                "it there (scaled for the number of ranks if you want) and leave this one out"
            )

    @backend.validator
    def _check_backend(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {value!r}")

    @timeout.validator
    def _check_timeout(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"timeout must be positive (seconds), got {value}")

    @nproc_per_node.validator
    def _check_nproc_per_node(
        self, attribute: attrs.Attribute[int | None], value: int | None
    ) -> None:
        if value is not None and value < 1:
            raise ValueError(f"nproc_per_node must be at least 1 or None, got {value}")

    @nnodes.validator
    def _check_nnodes(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"nnodes must be at least 1, got {value}")

    @max_nnodes.validator
    def _check_max_nnodes(self, attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < self.nnodes:
            raise ValueError(f"max_nnodes must be at least nnodes ({self.nnodes}), got {value}")

    @max_restarts.validator
    def _check_max_restarts(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"max_restarts must be at least 0, got {value}")

    @property
    def is_multi_node(self) -> bool:
        """Whether the run may span several machines."""
        return (self.max_nnodes or self.nnodes) > 1
