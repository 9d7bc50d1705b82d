"""The conformance kit: its checks' advice, and the whole suite against real installed plugins.

The slow test pip-installs a scaffolded plugin with deliberately broken trainer variants next
to the good one, runs the kit on them in a pytest subprocess, and reads the JUnit report: the
good trainer passes everything, each broken one fails its check with advice.
"""

from __future__ import annotations

import importlib.metadata as metadata
import math
import os
import subprocess
import sys
import textwrap
import threading
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
from plugin_packages import pip_install_target

from dacapo_trainers import TrainerConfig, TrainingIterationStats, write_array
from dacapo_trainers._scaffold import write_plugin
from dacapo_trainers.testing import (
    IterationChecker,
    TrainerConformance,
    _checks,
    conformance_tests,
    loss_fall_problem,
    toy_architecture_config,
)

# -- the checks' advice, on plain values ------------------------------------------------------


@attrs.define
class FakeTrainer:
    iteration: int = 0


def stats(iteration: int, loss: Any = 0.5, time: Any = 0.01) -> TrainingIterationStats:
    return TrainingIterationStats(iteration=iteration, loss=loss, time=time)


def run_checker(trainer: FakeTrainer, start: int, items: list[Any]) -> str | None:
    """Feed ``items`` as iterate() would yield them, advancing the trainer like a good one."""
    checker = IterationChecker(trainer, start)
    for item in items:
        trainer.iteration = getattr(item, "iteration", trainer.iteration) + 1
        problem = checker.check(item)
        if problem is not None:
            return problem
    return None


def test_consecutive_iterations_pass() -> None:
    trainer = FakeTrainer(iteration=5)
    assert run_checker(trainer, 5, [stats(5), stats(6), stats(7)]) is None


def test_a_skipped_iteration_reads_as_advice() -> None:
    problem = run_checker(FakeTrainer(), 0, [stats(0), stats(1), stats(3)])
    assert problem == (
        "FakeTrainer.iterate() yielded iteration 3 after 1: iterations must be consecutive"
    )


def test_a_wrong_first_iteration_says_where_to_start() -> None:
    problem = run_checker(FakeTrainer(iteration=7), 7, [stats(0)])
    assert problem is not None
    assert problem.startswith(
        "FakeTrainer.iterate() yielded iteration 0 first, but trainer.iteration was 7"
    )
    assert "resumes from a checkpoint" in problem


def test_trainer_iteration_must_advance_before_the_yield() -> None:
    trainer = FakeTrainer()
    checker = IterationChecker(trainer, 0)
    problem = checker.check(stats(0))  # trainer.iteration still 0
    assert problem is not None
    assert "when FakeTrainer.iterate() yielded iteration 0, trainer.iteration was 0" in problem
    assert "set self.iteration = 1 before yielding" in problem


@pytest.mark.parametrize(
    ("loss", "advice"),
    [
        (math.nan, "is nan; losses must be finite"),
        (math.inf, "is inf; losses must be finite"),
        (np.float32(0.5), "numpy.float32; it must be a Python float (use loss.item()"),
        (True, "builtins.bool; it must be a Python float"),
    ],
)
def test_bad_losses_read_as_advice(loss: Any, advice: str) -> None:
    problem = run_checker(FakeTrainer(), 0, [stats(0, loss=loss)])
    assert problem is not None and advice in problem, problem


def test_something_else_than_stats() -> None:
    problem = IterationChecker(FakeTrainer(), 0).check({"iteration": 0, "loss": 1.0})
    assert problem is not None
    assert "it must yield dacapo_trainers.TrainingIterationStats(" in problem


def test_negative_time() -> None:
    problem = run_checker(FakeTrainer(), 0, [stats(0, time=-1.0)])
    assert problem is not None and "wall time in seconds" in problem


def test_count_of_steps() -> None:
    trainer = FakeTrainer()
    checker = IterationChecker(trainer, 0)
    for i in range(2):
        trainer.iteration = i + 1
        assert checker.check(stats(i)) is None
    assert checker.count_problem(2, 0) is None
    assert checker.count_problem(3, 0) == (
        "FakeTrainer.iterate(3) yielded 2 stats; it must run exactly num_iterations = 3 steps "
        "(fewer only when the caller stops early)"
    )
    assert checker.losses == [0.5, 0.5]


def test_loss_fall() -> None:
    falling = [1.0] * 10 + [0.5] * 10
    assert loss_fall_problem(falling, window=10, ratio=0.9) is None
    flat = [0.25] * 20
    problem = loss_fall_problem(flat, window=10, ratio=0.9)
    assert problem is not None
    assert problem.startswith(
        "the loss did not fall on the toy problem: the mean of the first 10 losses is 0.25 and "
        "of the last 10 (of 20) is 0.25, not below 0.9 x 0.25 = 0.225."
    )
    assert "raise loss_iterations" in problem
    assert "at least 2 x loss_window = 20" in str(loss_fall_problem([1.0] * 5, 10, 0.9))


def test_leftover_threads_are_named() -> None:
    before = _checks.thread_idents()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="leaky-loader", daemon=True)
    thread.start()
    try:
        left = _checks.leftover_threads(before)
        assert [t.name for t in left] == ["leaky-loader"]
        problem = _checks.leftovers_problem("MyTrainer", left, {}, "ended normally")
        assert problem is not None
        assert problem.startswith(
            "after `with trainer:` ended normally, MyTrainer left thread 'leaky-loader' running;"
        )
    finally:
        stop.set()
        thread.join()
    assert _checks.leftover_threads(before) == []
    assert _checks.leftovers_problem("MyTrainer", [], {}, "ended normally") is None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_child_processes_are_found() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert child.pid in _checks.child_processes()
    finally:
        child.kill()
        child.wait()
    assert child.pid not in _checks.child_processes()


def test_zarr_arrays_at_any_depth(tmp_path: Path) -> None:
    container = tmp_path / "snapshots.zarr"
    assert _checks.zarr_arrays(container) == []
    write_array(container, "0/raw", np.zeros((2, 2)), voxel_size=(4, 4))
    write_array(container, "1/prediction", np.zeros((2, 2)), voxel_size=(4, 4))
    found = _checks.zarr_arrays(container)
    assert [path for path, _ in found] == ["0/raw", "1/prediction"]
    assert found[0][1]["voxel_size"] == [4, 4]


# -- the kit's surface ------------------------------------------------------------------------


@attrs.define(kw_only=True)
class ProbeTrainerConfig(TrainerConfig):
    trainer_type: ClassVar[str] = "nowhere:Trainer"


def test_conformance_tests_makes_a_subclass() -> None:
    config = ProbeTrainerConfig(name="probe", batch_size=1, learning_rate=1e-3)
    cls = conformance_tests(config, exact_resume=True, loss_iterations=40)
    assert issubclass(cls, TrainerConformance)
    assert cls.__name__ == "TestProbeTrainerConfigConformance"
    assert (cls.config, cls.exact_resume, cls.loss_iterations) == (config, True, 40)
    with pytest.raises(TypeError, match=r"unknown attribute\(s\) snapshot_intervall; known: "):
        conformance_tests(config, snapshot_intervall=1)


def test_exact_resume_is_the_default_and_opting_out_takes_a_reason() -> None:
    from dacapo_trainers.testing._training_checks import _exact_resume

    assert TrainerConformance.exact_resume is True
    assert _exact_resume(True, "TestX") is True
    assert _exact_resume("draws from a sampler that cannot be seeded", "TestX") is False
    for setting in (False, "", "  "):
        with pytest.raises(pytest.fail.Exception) as failed:
            _exact_resume(setting, "TestX")
        assert f"TestX.exact_resume is {setting!r}" in str(failed.value)
        assert "give the reason as a string" in str(failed.value)


def test_the_base_class_is_not_collected_and_names_its_checks() -> None:
    assert not TrainerConformance.__name__.startswith("Test")
    checks = [name for name in dir(TrainerConformance) if name.startswith("test_")]
    assert len(checks) >= 14
    for name in checks:
        assert getattr(TrainerConformance, name).__doc__, f"{name} has no docstring"


def test_toy_model_shapes() -> None:
    assert toy_architecture_config().output_shape() == (12, 12, 12)


def test_importing_the_kit_imports_nothing_heavy() -> None:
    code = (
        "import sys, dacapo_trainers.testing; "
        "print([m for m in ('torch', 'numpy', 'zarr', 'scipy') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_kit_is_a_pytest_plugin() -> None:
    entry_points = metadata.entry_points(group="pytest11")
    ours = [ep for ep in entry_points if ep.value == "dacapo_trainers.testing"]
    if not ours:
        pytest.skip("dacapo-trainers is installed with older metadata (reinstall it)")
    assert ours[0].name == "dacapo_trainers"


def test_the_header_line(pytestconfig: pytest.Config) -> None:
    from dacapo_trainers.testing import pytest_report_header

    line = pytest_report_header(pytestconfig)
    assert line.startswith("dacapo-trainers ") and "config types installed" in line


# -- the whole suite against installed plugins ------------------------------------------------

PROBE = "kit-probe"

BROKEN_CONFIGS = '''
"""Deliberately broken trainers, one flaw each, for the conformance kit's own tests."""

from typing import ClassVar

import attrs
from dacapo_trainers import TrainerConfig, hookimpl

from .config import KitProbeTrainerConfig

TRAINERS = "kit_probe.broken_trainers"


@attrs.define(kw_only=True)
class SkippingTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = f"{TRAINERS}:SkippingTrainer"


@attrs.define(kw_only=True)
class StuckTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = f"{TRAINERS}:StuckTrainer"


@attrs.define(kw_only=True)
class GreedyTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = f"{TRAINERS}:GreedyTrainer"


@attrs.define(kw_only=True)
class LeakyTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = f"{TRAINERS}:LeakyTrainer"


@attrs.define(kw_only=True)
class SilentSnapshotTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = f"{TRAINERS}:SilentSnapshotTrainer"


@attrs.define(kw_only=True)
class TensorLossTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = f"{TRAINERS}:TensorLossTrainer"


@attrs.define(kw_only=True)
class ForgetfulTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = f"{TRAINERS}:ForgetfulTrainer"


@attrs.define(kw_only=True)
class LateTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = f"{TRAINERS}:LateTrainer"


@hookimpl
def dacapo_trainers_trainer_configs() -> list[type[TrainerConfig]]:
    return [
        ForgetfulTrainerConfig,
        SkippingTrainerConfig,
        StuckTrainerConfig,
        GreedyTrainerConfig,
        LeakyTrainerConfig,
        SilentSnapshotTrainerConfig,
        TensorLossTrainerConfig,
        LateTrainerConfig,
    ]
'''

BROKEN_TRAINERS = """
import subprocess
import sys
import threading

import attrs
import torch

from .trainer import KitProbeTrainer


class SkippingTrainer(KitProbeTrainer):
    def iterate(self, num_iterations, model, optimizer, device):
        for stats in super().iterate(num_iterations, model, optimizer, device):
            if stats.iteration == 2:
                self.iteration += 1
                stats = attrs.evolve(stats, iteration=3)
            yield stats


class StuckTrainer(KitProbeTrainer):
    def build_optimizer(self, model):
        return torch.optim.SGD(model.parameters(), lr=0.0)


class GreedyTrainer(KitProbeTrainer):
    def cannot_train_reason(self, datasets):
        return None


class LateTrainer(KitProbeTrainer):
    # Refuses data smaller than the model only once build_batch_provider reads it.
    def cannot_train_model_reason(self, datasets, model, task):
        return None


class LeakyTrainer(KitProbeTrainer):
    def build_batch_provider(self, datasets, model, task, snapshot_container=None):
        super().build_batch_provider(datasets, model, task, snapshot_container)
        self._stop = threading.Event()
        threading.Thread(target=self._stop.wait, name="leaky-loader", daemon=True).start()
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(20)"])


class SilentSnapshotTrainer(KitProbeTrainer):
    def report_snapshot(self, iteration, container):
        pass


class TensorLossTrainer(KitProbeTrainer):
    def iterate(self, num_iterations, model, optimizer, device):
        for stats in super().iterate(num_iterations, model, optimizer, device):
            yield attrs.evolve(stats, loss=torch.tensor(stats.loss))


class ForgetfulTrainer(KitProbeTrainer):
    # Draws from a generator of its own that no state saves: a resume restarts it.

    def prepare_batches(self, datasets, model, task):
        super().prepare_batches(datasets, model, task)
        self._own = torch.Generator().manual_seed(0)

    def next_batch(self, index):
        for _ in range(int(torch.randint(0, 4, (1,), generator=self._own))):
            torch.rand(1, generator=self.generator)
        return super().next_batch(index)
"""

HEAVY_CONFIG = '''
"""A config module that imports torch at top level: what the lazy-import check catches."""

from typing import ClassVar

import attrs
import torch  # noqa: F401
from dacapo_trainers import TrainerConfig, hookimpl

from .config import KitProbeTrainerConfig


@attrs.define(kw_only=True)
class HeavyTrainerConfig(KitProbeTrainerConfig):
    trainer_type: ClassVar[str] = "kit_probe.trainer:KitProbeTrainer"


@hookimpl
def dacapo_trainers_trainer_configs() -> list[type[TrainerConfig]]:
    return [HeavyTrainerConfig]
'''

BROKEN_TESTS = '''
from typing import ClassVar

import attrs
from dacapo_trainers.testing import TrainerConformance

from kit_probe import KitProbeTrainerConfig
from kit_probe.broken import (
    ForgetfulTrainerConfig,
    GreedyTrainerConfig,
    LateTrainerConfig,
    LeakyTrainerConfig,
    SilentSnapshotTrainerConfig,
    SkippingTrainerConfig,
    StuckTrainerConfig,
    TensorLossTrainerConfig,
)
from kit_probe.heavy import HeavyTrainerConfig

FIELDS = {"name": "broken", "batch_size": 2, "learning_rate": 3e-3}


@attrs.define(kw_only=True)
class UnlistedTrainerConfig(KitProbeTrainerConfig):
    """Defined in a test, never installed: no entry point."""

    trainer_type: ClassVar[str] = "kit_probe.trainer:KitProbeTrainer"


class TestSkipping(TrainerConformance):
    config = SkippingTrainerConfig(**FIELDS)


class TestStuck(TrainerConformance):
    config = StuckTrainerConfig(**FIELDS)
    loss_iterations = 20
    loss_window = 5


class TestGreedy(TrainerConformance):
    config = GreedyTrainerConfig(**FIELDS)


class TestLeaky(TrainerConformance):
    config = LeakyTrainerConfig(**FIELDS)
    cleanup_timeout = 0.5


class TestSilentSnapshot(TrainerConformance):
    config = SilentSnapshotTrainerConfig(**FIELDS)
    snapshot_config = SilentSnapshotTrainerConfig(snapshot_interval=1, **FIELDS)


class TestTensorLoss(TrainerConformance):
    config = TensorLossTrainerConfig(**FIELDS)


class TestHeavy(TrainerConformance):
    config = HeavyTrainerConfig(**FIELDS)


class TestUnlisted(TrainerConformance):
    config = UnlistedTrainerConfig(**FIELDS)


class TestMissingConfig(TrainerConformance):
    pass


class TestForgetful(TrainerConformance):
    config = ForgetfulTrainerConfig(**FIELDS)


class TestLate(TrainerConformance):
    config = LateTrainerConfig(**FIELDS)
'''

#: test id -> the advice its failure must contain
EXPECTED_FAILURES = {
    "TestSkipping::test_iterate_yields_consecutive_stats": (
        "SkippingTrainer.iterate() yielded iteration 3 after 1: iterations must be consecutive"
    ),
    "TestStuck::test_loss_falls_on_the_toy_problem": (
        "StuckTrainer: the loss did not fall on the toy problem: the mean of the first 5 losses"
    ),
    "TestGreedy::test_cannot_train_without_gt": (
        "GreedyTrainer.can_train accepted datasets without gt"
    ),
    "TestLate::test_refuses_data_smaller_than_the_model_before_training": (
        "LateTrainer.build_batch_provider refused data smaller than the model's input (dataset "
        "'toy' is too small for the model's input shape (28, 28, 28) (axis 0)), but "
        "cannot_train_model_reason gave None"
    ),
    "TestLeaky::test_exit_releases_threads_and_processes": (
        "after `with trainer:` ended normally, LeakyTrainer left thread 'leaky-loader', "
        "child process"
    ),
    "TestLeaky::test_exit_releases_threads_and_processes_after_an_error": (
        "after `with trainer:` raised while iterate() was suspended, LeakyTrainer left thread"
    ),
    "TestSilentSnapshot::test_writes_snapshots": (
        "SilentSnapshotTrainer wrote snapshots (0/volumes/gradients, ...) but did not report "
        "them; call self.report_snapshot(iteration, snapshot_container)"
    ),
    "TestTensorLoss::test_iterate_yields_consecutive_stats": (
        "TensorLossTrainer.iterate(): the loss of iteration 0 is torch.Tensor; it must be a "
        "Python float (use loss.item()"
    ),
    "TestHeavy::test_selecting_the_type_imports_nothing_heavy": (
        "selecting 'HeavyTrainerConfig' and validating its config imported torch"
    ),
    "TestUnlisted::test_entry_point_is_declared": (
        "no installed entry point is named 'UnlistedTrainerConfig' in the group "
        "'dacapo_trainers': add"
    ),
    "TestMissingConfig::test_config_round_trips": (
        "set config on TestMissingConfig: a config of your trainer"
    ),
    # the kit checks an exact resume by default; the advice names the BatchTrainer's state
    "TestForgetful::test_trains_and_resumes_through_the_driver": (
        "ForgetfulTrainer is a BatchTrainer: draw every random choice of the batches from "
        "self.generator (the base saves it), and put the rest of the data state"
    ),
    # a type the registry cannot select: the property test says so, not hypothesis
    "TestUnlisted::test_every_config_value_round_trips": (
        "the data of UnlistedTrainerConfig(...) itself does not structure, so no drawn config can:"
    ),
}


def write_probe(root: Path) -> Path:
    """The scaffolded plugin, plus the broken variants and their entry points."""
    folder = root / PROBE
    write_plugin(PROBE, folder)
    package = folder / "src" / "kit_probe"
    (package / "broken.py").write_text(textwrap.dedent(BROKEN_CONFIGS))
    (package / "broken_trainers.py").write_text(textwrap.dedent(BROKEN_TRAINERS))
    (package / "heavy.py").write_text(textwrap.dedent(HEAVY_CONFIG))
    (folder / "tests" / "test_kit_probe_broken.py").write_text(textwrap.dedent(BROKEN_TESTS))
    pyproject = folder / "pyproject.toml"
    names = [line.split(":")[0].split("(")[0].strip() for line in BROKEN_CONFIGS.splitlines()]
    broken = [n.removeprefix("class ") for n in names if n.startswith("class ")]
    extra = [f'{name} = "kit_probe.broken"' for name in broken]
    extra.append('HeavyTrainerConfig = "kit_probe.heavy"')
    group = "[project.entry-points.dacapo_trainers]\n"
    text = pyproject.read_text()
    assert group in text
    pyproject.write_text(text.replace(group, group + "\n".join(extra) + "\n"))
    return folder


def junit_results(report: Path) -> dict[str, tuple[str, str]]:
    """test id (``Class::test``) -> (outcome, failure text)."""
    results = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
        outcome, text = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = tag
                text = f"{element.get('message', '')}\n{element.text or ''}"
                break
        results[test_id] = (outcome, text)
    return results


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Install the probe plugin and run the kit on it in a pytest subprocess."""
    root = tmp_path_factory.mktemp("kit")
    folder = write_probe(root)
    site = root / "site"
    pip_install_target([folder], site)
    report = root / "report.xml"
    tests = folder / "tests"
    selected = [str(tests / "test_kit_probe_conformance.py")]
    selected += [
        str(tests / f"test_kit_probe_broken.py::{test_id}") for test_id in EXPECTED_FAILURES
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("DACAPO_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report}",
            "--rootdir",
            str(folder),
            *selected,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert report.exists(), result.stdout + result.stderr
    return junit_results(report)


@pytest.mark.slow
def test_the_scaffolded_trainer_passes_every_check(kit_run: dict[str, tuple[str, str]]) -> None:
    good = {k: v for k, v in kit_run.items() if k.startswith("TestKitProbeTrainerConformance::")}
    assert len(good) >= 16
    failed = {k: text for k, (outcome, text) in good.items() if outcome != "passed"}
    assert not failed, failed


@pytest.mark.slow
@pytest.mark.parametrize("test_id", sorted(EXPECTED_FAILURES))
def test_each_broken_trainer_fails_with_advice(
    kit_run: dict[str, tuple[str, str]], test_id: str
) -> None:
    outcome, text = kit_run[test_id]
    assert outcome in ("failure", "error"), (outcome, text)  # error: failed in a fixture
    assert EXPECTED_FAILURES[test_id] in text, text


@pytest.mark.slow
def test_the_heavy_import_is_traced_to_its_line(kit_run: dict[str, tuple[str, str]]) -> None:
    _, text = kit_run["TestHeavy::test_selecting_the_type_imports_nothing_heavy"]
    assert "kit_probe/heavy.py:" in text and "import torch" in text, text
    assert "set trainer_type to a 'package.module:TrainerClass' string" in text
    assert "(also:" not in text  # torch alone: not repeated as "(also: torch)"
