from __future__ import annotations

import importlib.metadata
import subprocess
import sys

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
    for name in exported:
        assert getattr(dacapo_trainers_simple_tensor, name) is not None
