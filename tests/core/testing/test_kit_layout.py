"""The conformance kit split by area (packaging, config, training) keeps its public interface,
and calls the core's own functions instead of copies of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dacapo_trainers.testing
from dacapo_trainers._plugins._discovery import core_requirement, incompatibility
from dacapo_trainers.testing import TrainerConformance
from dacapo_trainers.testing._packaging_checks import core_dependency_problem

#: The checks, in the order pytest runs them; their names are public (plugin authors select,
#: skip and read them).
CHECKS = [
    "test_entry_point_is_declared",
    "test_registry_loads_the_config_class",
    "test_selecting_the_type_imports_nothing_heavy",
    "test_requires_a_compatible_core",
    "test_config_round_trips",
    "test_config_classes_follow_the_field_rules",
    "test_every_config_value_round_trips",
    "test_config_rejects_unknown_keys",
    "test_config_builds_its_trainer",
    "test_can_train_on_datasets_with_gt",
    "test_cannot_train_without_gt",
    "test_refuses_data_smaller_than_the_model_before_training",
    "test_iterate_yields_consecutive_stats",
    "test_iteration_can_be_set_to_resume",
    "test_loss_falls_on_the_toy_problem",
    "test_writes_snapshots",
    "test_exit_releases_threads_and_processes",
    "test_exit_releases_threads_and_processes_after_an_error",
    "test_trains_and_resumes_through_the_driver",
]


def test_the_checks_keep_their_names() -> None:
    assert sorted(n for n in dir(TrainerConformance) if n.startswith("test_")) == sorted(CHECKS)


def test_pytest_runs_them_packaging_then_config_then_training(tmp_path: Path) -> None:
    (tmp_path / "test_order.py").write_text(
        "from dacapo_trainers.reference import DummyTrainerConfig\n"
        "from dacapo_trainers.testing import conformance_tests\n"
        "TestDummy = conformance_tests(DummyTrainerConfig(name='d', batch_size=1, "
        "learning_rate=1e-3, mirror_augment=False))\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    collected = [line.rpartition("::")[2] for line in result.stdout.splitlines() if "::" in line]
    assert collected == CHECKS, result.stdout + result.stderr


def test_no_module_of_the_kit_is_long() -> None:
    folder = Path(dacapo_trainers.testing.__file__).parent
    lengths = {path.name: len(path.read_text().splitlines()) for path in folder.glob("*.py")}
    assert max(lengths.values()) <= 600, lengths


def test_the_public_names_stay() -> None:
    assert dacapo_trainers.testing.__all__ == [
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


# -- the core requirement: the kit and the registry judge it with the same function -----------

INSTALLED = "0.1.0"


@pytest.mark.parametrize(
    ("requires", "incompatible"),
    [
        (["dacapo-trainers>=0.1,<0.2"], False),
        (["dacapo-trainers"], False),
        (["numpy", "Dacapo_Trainers>=0.1"], False),
        (["dacapo-trainers>=9"], True),
        (["dacapo-trainers<0.1"], True),
        (["dacapo-trainers>=0.1", "dacapo-trainers<0.0.5"], True),
    ],
)
def test_a_declared_requirement_is_judged_as_the_registry_does(
    requires: list[str], incompatible: bool
) -> None:
    reason = incompatibility(requires, INSTALLED)
    assert (reason is not None) is incompatible
    problem = core_dependency_problem("dt-probe", requires, INSTALLED)
    if incompatible:
        assert problem is not None and reason is not None
        assert problem.startswith(f"dt-probe {reason}")
        assert "dacapo-trainers>=0.1,<0.2" in problem  # the range to widen to
    else:
        assert problem is None


@pytest.mark.parametrize(
    "requires",
    [[], ["numpy"], ['dacapo-trainers>=0.1; extra == "test"'], ["not a requirement ("]],
)
def test_no_requirement_on_the_core_is_advice(requires: list[str]) -> None:
    problem = core_dependency_problem("dt-probe", requires, INSTALLED)
    assert problem is not None
    assert problem.startswith("dt-probe does not declare a dependency on dacapo-trainers")
    assert f'add "{core_requirement(INSTALLED)}" to [project] dependencies' in problem


def test_the_core_itself_needs_no_requirement() -> None:
    assert core_dependency_problem("dacapo-trainers", [], INSTALLED) is None
    assert core_dependency_problem("Dacapo_Trainers", [], INSTALLED) is None
