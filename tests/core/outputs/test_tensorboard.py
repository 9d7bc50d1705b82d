"""``tensorboard: true``: the event file read back with TensorBoard's own reader."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pluggy
import pytest
from plugin_packages import pip_install_target
from run_helpers import CLI, run_data, write_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from dacapo_trainers import (
    ConfigError,
    Registry,
    TrainingFailedError,
    TrainingIterationStats,
    ZarrContainer,
    hookimpl,
    hookspecs,
    load_run_config,
    train,
    write_array,
)
from dacapo_trainers._outputs._previews import SnapshotPreviews
from dacapo_trainers._outputs._tensorboard import TensorBoardLogger
from dacapo_trainers._run._driver import check_inputs
from dacapo_trainers.reference import make_demo_data

ROOT = Path(__file__).resolve().parents[3]
SCALARS = ["learning_rate", "loss/train", "seconds_per_iteration"]


def read_events(output: Path) -> EventAccumulator:
    events = EventAccumulator(
        str(output / "tensorboard"), size_guidance={"scalars": 0, "images": 0}
    )
    events.Reload()
    return events


def scalar_steps(events: EventAccumulator, tag: str) -> list[int]:
    return [event.step for event in events.Scalars(tag)]


def test_logger_through_the_hooks(tmp_path: Path) -> None:
    import torch

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    previews = SnapshotPreviews(tmp_path)
    manager.register(previews)
    manager.register(TensorBoardLogger())
    hook = manager.hook
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    hook.dacapo_trainers_train_start(
        run=None, trainer=None, model=None, optimizer=optimizer, start_iteration=0, output=tmp_path
    )
    container = ZarrContainer(tmp_path / "snapshots.zarr")
    for iteration in range(4):
        stats = TrainingIterationStats(iteration, 1.0 / (iteration + 1), 0.25)
        optimizer.param_groups[0]["lr"] = 0.5 / 2 ** (iteration + 1)  # a schedule's step
        hook.dacapo_trainers_train_iteration_end(run=None, stats=stats, num_iterations=4)
        if iteration == 1:
            write_array(container, "1/volumes/raw", np.ones((8, 8, 8)), voxel_size=(1, 1, 1))
            hook.dacapo_trainers_train_snapshot_written(run=None, iteration=1, container=container)
        if iteration % 2 == 1:
            hook.dacapo_trainers_train_validation_end(run=None, iteration=iteration, loss=0.75)
    hook.dacapo_trainers_train_end(run=None, iteration=4, error=None)

    events = read_events(tmp_path)
    assert sorted(events.Tags()["scalars"]) == sorted([*SCALARS, "loss/validation"])
    assert events.Tags()["images"] == ["snapshots"]
    assert [(e.step, e.value) for e in events.Scalars("loss/train")] == [
        (0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3)), (3, 0.25)
    ]  # fmt: skip
    # The rate each step used: the optimizer's before the step's schedule update.
    assert [e.value for e in events.Scalars("learning_rate")] == [0.5, 0.25, 0.125, 0.0625]
    assert [(e.step, e.value) for e in events.Scalars("loss/validation")] == [(1, 0.75), (3, 0.75)]
    assert [e.value for e in events.Scalars("seconds_per_iteration")] == [0.25] * 4
    (image,) = events.Images("snapshots")
    from PIL import Image

    with Image.open(tmp_path / "snapshots" / "00000001.png") as png:
        assert (image.step, image.width, image.height) == (1, *png.size)


@pytest.fixture(scope="module")
def demo_zarr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_data(tmp_path_factory.mktemp("data") / "demo.zarr", shape=(40, 40, 40))


@pytest.fixture
def tiny_registry(tensor_site: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A registry with the tiny real trainer (``TinyTrainerConfig``) of the driver tests."""
    monkeypatch.syspath_prepend(str(tensor_site))
    return Registry.isolated(importlib.import_module("dt_tensor.plugin"))


class StopAt:
    """Stops the run after iteration ``iteration`` (as a crash between checkpoints would)."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    @hookimpl
    def dacapo_trainers_train_iteration_end(self, stats: TrainingIterationStats) -> None:
        if stats.iteration == self.iteration:
            raise RuntimeError("stopped between checkpoints")


def test_resume_leaves_every_step_once(
    tiny_registry: Registry, demo_zarr: Path, tmp_path: Path
) -> None:
    registry = tiny_registry
    output = tmp_path / "out"
    data = {**run_data(demo_zarr, output, snapshot_interval=3), "tensorboard": True}
    data["num_iterations"] = 8
    run = load_run_config(write_run(tmp_path / "run.yaml", data), registry=registry)

    # an observer that raises stops the run (TrainingFailedError, its cause chained)
    with pytest.raises(TrainingFailedError, match="stopped between checkpoints"):
        train(run, registry=registry, observers=[StopAt(6)], quiet=True)  # checkpoint at 4
    first = read_events(output)
    assert scalar_steps(first, "loss/train") == [0, 1, 2, 3, 4, 5]  # 6 was not logged
    result = train(run, registry=registry, quiet=True)
    assert not isinstance(result, int) and result.resumed_from == 4

    events = read_events(output)
    stats = [json.loads(line) for line in (output / "stats.jsonl").read_text().splitlines()]
    losses = [(event.step, event.value) for event in events.Scalars("loss/train")]
    assert losses == [(s["iteration"], pytest.approx(s["loss"])) for s in stats]
    assert [step for step, _ in losses] == list(range(8))
    for tag in SCALARS:
        assert scalar_steps(events, tag) == list(range(8)), tag
    # TinyTrainer's StepLR: 0.01, times 0.9 every 3 steps (restored with the checkpoint).
    rates = [event.value for event in events.Scalars("learning_rate")]
    np.testing.assert_allclose(rates, [0.01] * 3 + [0.009] * 3 + [0.0081] * 2, rtol=1e-6)
    assert [image.step for image in events.Images("snapshots")] == [2, 5]
    # How: the resumed run's event file starts a session at step 4 (purge_step), which makes
    # readers drop what the first try logged from step 4 on.
    files = sorted((output / "tensorboard").iterdir())
    assert len(files) == 2
    starts = [
        event.step
        for event in EventFileLoader(str(files[1])).Load()
        if event.HasField("session_log")
    ]
    assert starts == [4]


def test_tensorboard_may_be_switched_on_when_resuming(
    tiny_registry: Registry, demo_zarr: Path, tmp_path: Path
) -> None:
    registry = tiny_registry
    output = tmp_path / "out"
    data = {**run_data(demo_zarr, output), "num_iterations": 4}
    train(load_run_config(write_run(tmp_path / "a.yaml", data), registry), registry=registry)
    assert not (output / "tensorboard").exists()
    data = {**data, "num_iterations": 6, "tensorboard": True}
    run = load_run_config(write_run(tmp_path / "b.yaml", data), registry)
    train(run, registry=registry, quiet=True)
    assert scalar_steps(read_events(output), "loss/train") == [4, 5]


def test_missing_tensorboard_is_refused_before_anything_is_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_zarr: Path,
    tensor_site: Path,
    tiny_registry: Registry,
) -> None:
    output = tmp_path / "out"
    run_file = write_run(
        tmp_path / "run.yaml", {**run_data(demo_zarr, output), "tensorboard": True}
    )
    hide = "import sys; sys.modules['tensorboard'] = None"  # as if it were not installed
    script = f"{hide}; from dacapo_trainers._cli import main; raise SystemExit(main())"
    result = subprocess.run(
        [sys.executable, "-c", script, "train", str(run_file)],
        env=CLI(tensor_site, tmp_path).env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: invalid config: $.tensorboard: true needs the tensorboard package, which is not "
        "installed: pip install 'dacapo-trainers[tensorboard]' (or set tensorboard: false)"
    ]
    assert not output.exists()

    run = load_run_config(run_file, tiny_registry)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ConfigError, match=r"\$\.tensorboard: true needs the tensorboard"):
        train(run, registry=tiny_registry)
    # `validate --inputs` refuses what `train` refuses.
    with pytest.raises(ConfigError, match=r"\$\.tensorboard: true needs the tensorboard"):
        check_inputs(run, registry=tiny_registry)
    assert not output.exists()


@pytest.fixture(scope="module")
def simple_tensor_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first-party simple-tensor plugin, pip-installed from this checkout."""
    target = tmp_path_factory.mktemp("simple-tensor-site")
    pip_install_target([ROOT / "plugins" / "simple-tensor"], target)
    return target


def test_cli_run_with_simple_tensor_previews_and_events(
    simple_tensor_site: Path, tmp_path: Path
) -> None:
    cli = CLI(simple_tensor_site, tmp_path)
    made = cli("demo-data", str(tmp_path / "demo.zarr"), "--shape", "40", "40", "40")
    assert made.returncode == 0, made.stderr
    run = run_data(tmp_path / "demo.zarr", tmp_path / "out")
    run["trainer_config"] = {
        "__type__": "SimpleTensorTrainerConfig",
        "name": "st",
        "batch_size": 2,
        "learning_rate": 1e-3,
        "warmup_iterations": 4,
        "snapshot_interval": 2,
    }
    run.update(num_iterations=4, checkpoint_interval=2, tensorboard=True)
    result = cli("train", str(write_run(tmp_path / "run.yaml", run)), "--quiet")
    assert result.returncode == 0, result.stderr
    output = tmp_path / "out"

    import zarr

    snapshots = sorted(int(name) for name in zarr.open_group(str(output / "snapshots.zarr")))
    assert len(snapshots) == 2
    previews = sorted(path.name for path in (output / "snapshots").iterdir())
    assert previews == [f"{iteration:08d}.png" for iteration in snapshots]
    for preview in previews:
        assert (output / "snapshots" / preview).stat().st_size > 20_000

    events = read_events(output)
    assert sorted(events.Tags()["scalars"]) == SCALARS
    for tag in SCALARS:
        assert scalar_steps(events, tag) == [0, 1, 2, 3], tag
    assert [image.step for image in events.Images("snapshots")] == snapshots
    rates = [event.value for event in events.Scalars("learning_rate")]
    assert rates[0] == pytest.approx(1e-5) and rates == sorted(rates)  # the warmup, from 1%
