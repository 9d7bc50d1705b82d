"""``TrainerConformance``: the whole Trainer contract as pytest tests, for any trainer config.

The checks come in three groups, one module each, on a shared base (``_kit_base``: the tunable
class attributes, the toy problem, the fixtures): packaging (``_packaging_checks``), the config
(``_config_checks``) and training (``_training_checks``). ``TrainerConformance`` is their union.

Nothing here imports torch at module import (pytest loads this package in every session); the
tests import it when they run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._contract._config import TrainerConfig
from ._config_checks import ConfigChecks
from ._packaging_checks import PackagingChecks
from ._training_checks import TrainingChecks


# pytest runs inherited tests base classes first (reverse MRO): packaging, config, training.
class TrainerConformance(TrainingChecks, ConfigChecks, PackagingChecks):
    """Subclass it in your tests, set :attr:`config`, and pytest runs the Trainer contract.

    Example (``tests/test_conformance.py`` of a plugin)::

        from dacapo_trainers.testing import TrainerConformance
        from my_trainer import MyTrainerConfig


        class TestMyTrainer(TrainerConformance):
            config = MyTrainerConfig(name="conformance", batch_size=2, learning_rate=3e-3)
            snapshot_config = MyTrainerConfig(
                name="conformance", batch_size=2, learning_rate=3e-3, snapshot_interval=1
            )

    The checks train on a toy problem the kit writes itself (a 40³ synthetic volume of cells
    from :func:`dacapo_trainers.reference.make_demo_data`, a tiny reference
    :class:`~dacapo_trainers.reference.UNetConfig` and the
    :class:`~dacapo_trainers.reference.AffinitiesTaskConfig`), on the CPU, seeded. Pick a
    :attr:`config` that learns fast: a learning rate of about 1e-3 to 3e-3, no long warmup.

    The checks run in three groups: packaging (entry point, registry, lazy imports, the core
    requirement), the config (JSON round trip, unknown keys, field rules, ``build_trainer``)
    and training (datasets, ``iterate``, the loss, snapshots, cleanup, a run with a resume).
    The class attributes below tune them; the ``make_*`` methods can be overridden to train on
    another problem (e.g. a task or dataset type your trainer needs).
    """


def conformance_tests(config: TrainerConfig, **attributes: Any) -> type[TrainerConformance]:
    """A :class:`TrainerConformance` subclass for ``config``: the suite in one line.

    ``attributes`` set the class attributes (``snapshot_config=...``, ``exact_resume=True``,
    ...). Assign the result to a name pytest collects::

        TestMyTrainer = conformance_tests(MyTrainerConfig(name="t", batch_size=2,
                                                          learning_rate=3e-3))
    """
    unknown = sorted(set(attributes) - set(_TUNABLE))
    if unknown:
        raise TypeError(
            f"conformance_tests() got unknown attribute(s) {', '.join(unknown)}; known: "
            f"{', '.join(_TUNABLE)}"
        )
    name = f"Test{type(config).__name__}Conformance"
    return type(name, (TrainerConformance,), {"config": config, **attributes})


_TUNABLE: Sequence[str] = (
    "snapshot_config",
    "snapshot_iterations",
    "requires_gt",
    "exact_resume",
    "loss_iterations",
    "loss_window",
    "loss_ratio",
    "seed",
    "device",
    "heavy_modules",
    "torch_threads",
    "cleanup_timeout",
    "round_trip_examples",
)
