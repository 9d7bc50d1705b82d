"""The package exports its config, its trainer (lazily, no torch on import) and its errors,
which are the core's TrainingErrors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import dacapo_trainers_distributed as package
from dacapo_trainers import TrainingError


def test_all_exports_the_config_the_trainer_and_the_errors() -> None:
    assert package.__all__ == [
        "BACKENDS",
        "DistributedTrainer",
        "DistributedTrainerConfig",
        "LaunchError",
        "RankFailureError",
        "__version__",
        "rank_seed",
    ]
    for name in package.__all__:
        assert getattr(package, name) is not None, name


def test_every_error_the_package_defines_is_exported_and_a_training_error() -> None:
    defined = {
        value
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        for value in vars(importlib.import_module(info.name)).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == info.name
    }
    assert defined == {package.LaunchError, package.RankFailureError}
    assert all(issubclass(error, TrainingError) for error in defined)


def test_the_trainer_is_loaded_on_first_access() -> None:
    code = (
        "import sys, dacapo_trainers_distributed as p\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "p.DistributedTrainer\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
