"""The conformance kit of dacapo-trainers against GunpowderTrainerConfig."""

from __future__ import annotations

from dacapo_trainers.testing import TrainerConformance
from dacapo_trainers_gunpowder import GunpowderTrainerConfig

# Fast learning for the toy problem: a short warmup; one data worker (a 2-core box).
SETTINGS = {"batch_size": 2, "learning_rate": 3e-3, "warmup_iterations": 5, "num_data_fetchers": 1}


class TestGunpowderConformance(TrainerConformance):
    config = GunpowderTrainerConfig(name="conformance", **SETTINGS)
    snapshot_config = GunpowderTrainerConfig(name="conformance", snapshot_interval=1, **SETTINGS)
    exact_resume = True
