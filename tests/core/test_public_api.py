"""The public namespace: complete, sorted, and light to import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import dacapo_trainers


def test_all_is_sorted_and_complete() -> None:
    exported = dacapo_trainers.__all__
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(dacapo_trainers).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("dacapo_trainers")
    }
    assert public <= set(exported), public - set(exported)
    namespace: dict[str, object] = {}
    exec("from dacapo_trainers import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == exported
    # every class and function is the project's own, reached from the top (re-exported)
    for name, value in namespace.items():
        if isinstance(value, type) or inspect.isfunction(value):
            module = getattr(value, "__module__", "")
            assert module.startswith("dacapo_trainers"), (name, module)


def test_import_does_not_import_torch_gunpowder_or_plugins() -> None:
    heavy = (
        "torch",
        "gunpowder",
        "zarr",
        "numpy",
        "matplotlib",
        "dacapo_trainers_gunpowder",
        "dacapo_trainers_simple_tensor",
        "dacapo_trainers_distributed",
    )
    code = (
        "import sys, dacapo_trainers; "
        f"loaded = [m for m in {heavy!r} if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_trainer_contract_matches_dacapo() -> None:
    from dacapo_trainers import Trainer

    abstract = Trainer.__abstractmethods__
    assert abstract == {"create_optimizer", "iterate", "build_batch_provider"}
    # DaCapo's signatures: what DaCapo code calls on a trainer
    expected = {
        "create_optimizer": ["self", "model"],
        "iterate": ["self", "num_iterations", "model", "optimizer", "device"],
        "build_batch_provider": ["self", "datasets", "model", "task", "snapshot_container"],
        "can_train": ["self", "datasets"],
    }
    for name, parameters in expected.items():
        assert list(inspect.signature(getattr(Trainer, name)).parameters) == parameters, name
    assert set(Trainer.__annotations__) >= {"iteration", "batch_size", "learning_rate"}


def test_normalize_raw_centres_integers_and_keeps_floats() -> None:
    import numpy as np

    from dacapo_trainers import normalize_raw

    scaled = normalize_raw(np.array([0, 255], dtype=np.uint8))
    assert scaled.dtype == np.float32
    assert scaled.tolist() == [-1.0, 1.0]
    floats = np.array([0.25, 3.0], dtype=np.float64)
    assert normalize_raw(floats).tolist() == [0.25, 3.0]
    assert normalize_raw(floats).dtype == np.float32
