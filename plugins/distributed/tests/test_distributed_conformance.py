"""The conformance kit of dacapo-trainers against DistributedTrainerConfig.

The kit drives the trainer in this process, without torchrun: there it delegates to its inner
trainer on one rank. Its driver check launches real workers (one process here), which the kit
reports as skipped; the multi-process behaviour is tested in test_distributed_training.py.
"""

from __future__ import annotations

from dacapo_trainers.testing import TrainerConformance
from dacapo_trainers_distributed import DistributedTrainerConfig
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig

# Fast learning for the toy problem: Adam, a short warmup.
SETTINGS = {"batch_size": 2, "learning_rate": 3e-3, "optimizer": "Adam", "warmup_iterations": 5}


def wrapped(**inner: object) -> DistributedTrainerConfig:
    return DistributedTrainerConfig(
        trainer_config=SimpleTensorTrainerConfig(name="conformance", **SETTINGS, **inner),
        backend="gloo",
        nproc_per_node=1,
        timeout=60.0,
    )


class TestDistributedConformance(TrainerConformance):
    config = wrapped()
    snapshot_config = wrapped(snapshot_interval=1)
    exact_resume = True
