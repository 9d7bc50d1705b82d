"""The conformance kit of dacapo-trainers against SimpleTensorTrainerConfig."""

from __future__ import annotations

from dacapo_trainers.testing import TrainerConformance
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig

# Fast learning for the toy problem: Adam, a short warmup.
SETTINGS = {"batch_size": 2, "learning_rate": 3e-3, "optimizer": "Adam", "warmup_iterations": 5}


class TestSimpleTensorConformance(TrainerConformance):
    config = SimpleTensorTrainerConfig(name="conformance", **SETTINGS)
    snapshot_config = SimpleTensorTrainerConfig(name="conformance", snapshot_interval=1, **SETTINGS)
    exact_resume = True
