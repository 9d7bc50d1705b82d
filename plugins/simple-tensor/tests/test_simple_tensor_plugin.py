from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import dacapo_trainers_simple_tensor
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig, plugin


def test_hook_returns_the_config() -> None:
    assert plugin.dacapo_trainers_trainer_configs() == [SimpleTensorTrainerConfig]


def test_entry_point_is_declared() -> None:
    distribution = importlib.metadata.distribution("dacapo-trainers-simple-tensor")
    entry_points = [ep for ep in distribution.entry_points if ep.group == "dacapo_trainers"]
    assert [(ep.name, ep.value) for ep in entry_points] == [
        ("SimpleTensorTrainerConfig", "dacapo_trainers_simple_tensor.plugin")
    ]
    assert entry_points[0].load() is plugin
    requires = {Requirement(r).name: Requirement(r).specifier for r in distribution.requires or []}
    assert requires["dacapo-trainers"] == SpecifierSet(">=0.1,<0.2")


def test_plugin_and_package_import_no_torch() -> None:
    code = (
        "import sys\n"
        "import dacapo_trainers_simple_tensor.plugin\n"
        "import dacapo_trainers_simple_tensor\n"
        "config = dacapo_trainers_simple_tensor.SimpleTensorTrainerConfig("
        "name='t', batch_size=1, learning_rate=0.1)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "dacapo_trainers_simple_tensor.SimpleTensorTrainer\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_is_sorted_and_complete() -> None:
    exported = dacapo_trainers_simple_tensor.__all__
    assert exported == sorted(exported)
    namespace: dict[str, object] = {}
    exec("from dacapo_trainers_simple_tensor import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == exported
    # the classes are this package's own (the trainer loaded lazily on first access)
    package = "dacapo_trainers_simple_tensor"
    for name in ("SimpleTensorTrainer", "SimpleTensorTrainerConfig"):
        assert getattr(dacapo_trainers_simple_tensor, name).__module__.startswith(package + ".")
    assert namespace["__version__"] == importlib.metadata.version("dacapo-trainers-simple-tensor")
    assert set(namespace["OPTIMIZERS"]) >= {"RAdam", "Adam"}  # type: ignore[arg-type]


def test_the_demo_settings_hook_gives_valid_fields_for_this_trainer_only() -> None:
    """The demo's settings come from this plugin's hook: they exist and validate."""
    from dacapo_trainers import structure_config
    from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig, plugin

    settings = plugin.dacapo_trainers_demo_settings(type_name="SimpleTensorTrainerConfig")
    assert settings == {"warmup_iterations": 20, "snapshot_interval": 100}
    data = {"__type__": "SimpleTensorTrainerConfig", "name": "demo", "batch_size": 2}
    config = structure_config({**data, "learning_rate": 1e-3, **settings})
    assert isinstance(config, SimpleTensorTrainerConfig)
    assert (config.warmup_iterations, config.snapshot_interval) == (20, 100)
    assert plugin.dacapo_trainers_demo_settings(type_name="GunpowderTrainerConfig") is None


def test_the_readmes_run_file_is_a_valid_simple_tensor_run(tmp_path: Path) -> None:
    """The run file on the repository README's first pages loads as written."""
    import re

    from dacapo_trainers import load_run_config

    readme = Path(__file__).parents[3] / "README.md"
    block = re.search(r"```yaml\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    assert block is not None, "README.md has no YAML run file"
    run_file = tmp_path / "run.yaml"
    run_file.write_text(block.group(1), encoding="utf-8")
    run = load_run_config(run_file)
    assert isinstance(run.trainer_config, SimpleTensorTrainerConfig)
    assert run.trainer_config.snapshot_interval == 250  # README: snapshots and their previews
