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

from ._checks import IterationChecker, loss_fall_problem
from ._conformance import TrainerConformance, conformance_tests
from ._problem import (
    toy_architecture_config,
    toy_dataset_config,
    toy_task_config,
    write_toy_data,
)
from ._pytest_plugin import conformance_data
from ._run_data import tiny_run_data
from ._pytest_plugin import pytest_report_header as pytest_report_header  # the hook

__all__ = [
    "IterationChecker",
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
