"""The package exports its config, its trainer (lazily) and its errors (it defines none: data
it cannot train on is refused with a ValueError, reported as a CannotTrainError)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import dacapo_trainers_simple_tensor as package


def test_all_exports_the_config_and_the_trainer() -> None:
    assert package.__all__ == [
        "OPTIMIZERS",
        "SimpleTensorTrainer",
        "SimpleTensorTrainerConfig",
        "__version__",
    ]
    for name in package.__all__:
        assert getattr(package, name) is not None, name


def test_the_package_defines_no_error_of_its_own() -> None:
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    ]
    errors = [
        name
        for module in modules
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module.__name__
    ]
    assert errors == []
