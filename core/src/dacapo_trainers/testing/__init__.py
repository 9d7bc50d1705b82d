"""The conformance test kit for trainer plugins, and a pytest plugin.

Every trainer plugin runs the Trainer contract as tests with one class in its test suite::

    from dacapo_trainers.testing import TrainerConformance
    from my_trainer import MyTrainerConfig


    class TestMyTrainer(TrainerConformance):
        config = MyTrainerConfig(name="conformance", batch_size=2, learning_rate=3e-3)

or, the same in one line::

    TestMyTrainer = conformance_tests(MyTrainerConfig(name="c", batch_size=2, learning_rate=3e-3))

Each check that fails says what to change. Importing this package imports neither torch nor
numpy: pytest loads it (entry point ``pytest11``) in every session, where it adds the fixture
``conformance_data`` and a line to the header. Where pytest's plugin autoload is off
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), load it in the top-level ``conftest.py`` with
``pytest_plugins = ["dacapo_trainers.testing"]``.
"""

from typing import TYPE_CHECKING, Any

from ._checks import IterationChecker, loss_fall_problem
from ._conformance import TrainerConformance, conformance_tests
from ._problem import (
    toy_architecture_config,
    toy_dataset_config,
    toy_task_config,
    write_toy_data,
)
from ._pytest_plugin import conformance_data
from ._pytest_plugin import pytest_report_header as pytest_report_header  # the hook
from ._run_data import tiny_run_data

__all__ = [
    "IterationChecker",
    "ToyModel",
    "ToyUpsamplingModel",
    "TrainerConformance",
    "conformance_data",
    "conformance_tests",
    "loss_fall_problem",
    "tiny_run_data",
    "toy_architecture_config",
    "toy_dataset_config",
    "toy_task_config",
    "write_toy_data",
]

if TYPE_CHECKING:
    from ._toy_models import ToyModel, ToyUpsamplingModel


def __getattr__(name: str) -> Any:
    # PEP 562: the toy models import torch; pytest imports this package in every session
    if name in ("ToyModel", "ToyUpsamplingModel"):
        from . import _toy_models

        return getattr(_toy_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
