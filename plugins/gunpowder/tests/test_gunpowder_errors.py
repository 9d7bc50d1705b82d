"""The package's surface (config, lazy trainer, errors) and a data worker's failure as the CLI
reports it: one paragraph and exit status 1, the worker's traceback only with --debug."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

from gunpowder_helpers import demo_run_file

import dacapo_trainers_gunpowder as package
from dacapo_trainers import TrainingError
from dacapo_trainers.reference import make_demo_data
from dacapo_trainers_gunpowder import DataWorkerError

#: Exceptions the package defines and keeps to itself: the sampler's refusal, which
#: ``build_batch_provider`` turns into the ValueError the driver reports as CannotTrainError.
INTERNAL_ERRORS = {"NoValidLocationError"}


def test_all_exports_the_configs_the_trainer_and_the_errors() -> None:
    assert package.__all__ == sorted(package.__all__)
    assert {"GunpowderTrainerConfig", "GunpowderTrainer", "DataWorkerError"} <= set(package.__all__)
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert package.GunpowderTrainer.__name__ == "GunpowderTrainer"  # loaded on first access


def test_every_error_the_package_defines_is_exported_and_a_training_error() -> None:
    defined = set()
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                defined.add(name)
    assert defined - INTERNAL_ERRORS == {"DataWorkerError"}
    assert issubclass(DataWorkerError, TrainingError)
    assert DataWorkerError.__module__ == "dacapo_trainers_gunpowder._errors"


def test_the_worker_traceback_is_a_note_not_the_message() -> None:
    error = DataWorkerError(
        "data worker 1 failed producing batch 4: ValueError: bad raw\n"
        "worker traceback:\nTraceback (most recent call last):\n  File 'x.py'\nValueError: bad\n"
    )
    assert str(error) == (
        "data worker 1 failed producing batch 4: ValueError: bad raw (--debug shows the "
        "worker's traceback)"
    )
    assert error.worker_traceback is not None
    assert error.worker_traceback.startswith("Traceback (most recent call last):")
    assert error.__notes__ == [f"worker traceback:\n{error.worker_traceback}"]
    died = DataWorkerError("data worker 0 (pid 7) exited with code -9 before producing batch 2")
    assert died.worker_traceback is None and not hasattr(died, "__notes__")
    assert "--debug" not in str(died)


def _run_file(folder: Path) -> Path:
    """A run whose IntensityAugment (clip) gets raw in [0, 255]: the workers refuse it."""
    augment = {"__type__": "IntensityAugmentConfig", "scale": [0.9, 1.1], "shift": [-0.1, 0.1]}
    return demo_run_file(folder, 2, [augment])


def _train(run_file: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", *flags, "train", str(run_file), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_worker_failure_is_one_paragraph_through_the_cli(tmp_path: Path) -> None:
    make_demo_data(tmp_path / "demo.zarr", shape=(40, 40, 40))
    run_file = _run_file(tmp_path)
    result = _train(run_file)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: data worker 0 failed producing batch 0: ValueError: ")
    assert "IntensityAugment with clip=True needs raw in [0, 1]" in lines[0]
    assert "Traceback" not in result.stderr
    debug = _train(run_file, "--debug")
    assert debug.returncode == 1
    assert "worker traceback:" in debug.stderr and "Traceback" in debug.stderr
