"""Builds throwaway plugin packages and pip-installs them for real, for discovery tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

GOOD_PLUGIN = '''
import os
from pathlib import Path

import attrs

from dacapo_trainers import TaggedConfig, TrainerConfig, hookimpl

if os.environ.get("DT_IMPORT_LOG"):
    with open(os.environ["DT_IMPORT_LOG"], "a") as log:
        log.write(__name__ + "\\n")


@attrs.define(kw_only=True)
class GoodAugmentConfig(TaggedConfig):
    """An augment of the good plugin."""

    scale: float = attrs.field(default=1.0, metadata={"help_text": "How much to scale."})


@attrs.define(kw_only=True)
class GoodTrainerConfig(TrainerConfig):
    """A trainer config from an installed plugin."""

    trainer_type = "dt_good.trainer:GoodTrainer"
    augments: list[GoodAugmentConfig] = attrs.field(
        factory=list, metadata={"help_text": "Augments to apply."}
    )
    snapshot_interval: int | None = attrs.field(
        default=None, metadata={"help_text": "Snapshot every this many iterations."}
    )


@hookimpl
def dacapo_trainers_trainer_configs():
    return [GoodTrainerConfig]


@hookimpl
def dacapo_trainers_component_configs():
    return [GoodAugmentConfig]
'''

LOGGING_MODULE = """
import os

if os.environ.get("DT_IMPORT_LOG"):
    with open(os.environ["DT_IMPORT_LOG"], "a") as log:
        log.write(__name__ + "\\n")
"""

BROKEN_PLUGIN = (
    LOGGING_MODULE
    + """
raise ImportError("needs libfoo, which is not installed")
"""
)

HOOK_FAILS_PLUGIN = (
    LOGGING_MODULE
    + """
from dacapo_trainers import hookimpl


@hookimpl
def dacapo_trainers_trainer_configs():
    raise RuntimeError("hook exploded")
"""
)

LIAR_PLUGIN = (
    LOGGING_MODULE
    + """
import attrs

from dacapo_trainers import TrainerConfig, hookimpl


@attrs.define(kw_only=True)
class SomethingElseConfig(TrainerConfig):
    trainer_type = "x:y"


@hookimpl
def dacapo_trainers_trainer_configs():
    return [SomethingElseConfig]
"""
)

DUPLICATE_PLUGIN = (
    LOGGING_MODULE
    + """
import attrs

from dacapo_trainers import TrainerConfig, hookimpl


@attrs.define(kw_only=True)
class GoodTrainerConfig(TrainerConfig):
    trainer_type = "x:y"


@hookimpl
def dacapo_trainers_trainer_configs():
    return [GoodTrainerConfig]
"""
)

INCOMPATIBLE_PLUGIN = (
    LOGGING_MODULE
    + """
import attrs

from dacapo_trainers import TrainerConfig, hookimpl


@attrs.define(kw_only=True)
class FutureTrainerConfig(TrainerConfig):
    trainer_type = "x:y"


@hookimpl
def dacapo_trainers_trainer_configs():
    return [FutureTrainerConfig]
"""
)

MISNAMED_PLUGIN = (
    LOGGING_MODULE
    + """
import attrs

from dacapo_trainers import TrainerConfig, hookimpl


@attrs.define(kw_only=True)
class MixupTrainerConfig(TrainerConfig):
    trainer_type = "x:y"


@hookimpl
def dacapo_trainers_trainer_configs():
    return [MixupTrainerConfig]
"""
)

UNDECLARED_PLUGIN = (
    LOGGING_MODULE
    + """
import attrs

from dacapo_trainers import TaggedConfig, TrainerConfig, hookimpl


@attrs.define(kw_only=True)
class CutmixTrainerConfig(TrainerConfig):
    trainer_type = "x:y"
    alpha = attrs.field(default=0.2)  # a field rule broken: no annotation


@attrs.define(kw_only=True)
class CutmixAugmentConfig(TaggedConfig):  # returned, but its entry point was forgotten
    size: int = 4


@hookimpl
def dacapo_trainers_trainer_configs():
    return [CutmixTrainerConfig]


@hookimpl
def dacapo_trainers_component_configs():
    return [CutmixAugmentConfig]
"""
)

HEAVY_PLUGIN = (
    LOGGING_MODULE
    + """
import attrs
import torch  # the mistake: a heavy import at the top of the entry-point module

from dacapo_trainers import TrainerConfig, hookimpl


@attrs.define(kw_only=True)
class HeavyTrainerConfig(TrainerConfig):
    trainer_type = "x:y"


@hookimpl
def dacapo_trainers_trainer_configs():
    return [HeavyTrainerConfig]
"""
)

BAD_SIGNATURE_PLUGIN = (
    LOGGING_MODULE
    + """
from dacapo_trainers import hookimpl


@hookimpl
def dacapo_trainers_trainer_configs(registry):
    return []
"""
)

TENSOR_PLUGIN = (
    LOGGING_MODULE
    + '''
import attrs

from dacapo_trainers import TrainerConfig, hookimpl


@attrs.define(kw_only=True)
class TinyTrainerConfig(TrainerConfig):
    """A small real trainer whose batches depend only on its seed (for resume tests)."""

    trainer_type = "dt_tensor.trainer:TinyTrainer"
    step_delay: float = 0.0
    nan_at: int | None = None
    snapshot_interval: int | None = None


@hookimpl
def dacapo_trainers_trainer_configs():
    return [TinyTrainerConfig]


def _log_hook(line):
    """Records a hook call where DT_HOOK_LOG names a file (the signal tests read it)."""
    if os.environ.get("DT_HOOK_LOG"):
        with open(os.environ["DT_HOOK_LOG"], "a") as log:
            log.write(line + "\\n")


@hookimpl
def dacapo_trainers_train_start(start_iteration):
    _log_hook(f"train_start {start_iteration}")


@hookimpl
def dacapo_trainers_train_end(iteration, error):
    _log_hook(f"train_end {iteration} {type(error).__name__ if error else None}")
'''
)

TENSOR_TRAINER = '''
"""A minimal in-memory trainer: random crops drawn from a seeded torch.Generator."""

import time

import numpy as np
import torch

from dacapo_trainers import (
    InMemoryArray, Trainer, TrainingIterationStats, normalize_raw, write_array
)


class TinyTrainer(Trainer):
    def create_optimizer(self, model):
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.9)
        return optimizer

    def cannot_train_reason(self, datasets):
        for dataset in datasets:
            if dataset.gt is None:
                return f"dataset {dataset.name!r} has no gt"
        return None

    def build_batch_provider(self, datasets, model, task, snapshot_container=None):
        dataset = datasets[0]
        if any(s < i for s, i in zip(dataset.raw.data.shape, model.input_shape)):
            raise ValueError(f"dataset {dataset.name!r} is smaller than the model input")
        raw = normalize_raw(dataset.raw.data[...])
        gt = InMemoryArray(np.asarray(dataset.gt.data[...]), dataset.gt.voxel_size,
                           dataset.gt.offset)
        target = task.predictor.create_target(gt)
        weight = task.predictor.create_weight(gt, target)
        self.raw = torch.from_numpy(raw)
        self.target = torch.from_numpy(np.asarray(target.data, dtype=np.float32))
        self.weight = torch.from_numpy(np.asarray(weight.data, dtype=np.float32))
        self.voxel_size = dataset.raw.voxel_size
        self.task = task
        self.snapshot_container = snapshot_container
        self.generator = torch.Generator().manual_seed(self.seed or 0)

    def state_dict(self):
        return {"scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])

    def _batch(self, model):
        size_in = model.input_shape
        size_out = model.output_shape
        context = [(i - o) // 2 for i, o in zip(size_in, size_out)]
        raws, targets, weights = [], [], []
        for _ in range(self.batch_size):
            start = [int(torch.randint(0, s - i + 1, (1,), generator=self.generator))
                     for s, i in zip(self.raw.shape, size_in)]
            inner = [a + c for a, c in zip(start, context)]
            raws.append(self.raw[tuple(slice(a, a + i) for a, i in zip(start, size_in))][None])
            out = (slice(None),) + tuple(slice(a, a + o) for a, o in zip(inner, size_out))
            targets.append(self.target[out])
            weights.append(self.weight[out])
        return torch.stack(raws), torch.stack(targets), torch.stack(weights)

    def iterate(self, num_iterations, model, optimizer, device):
        config = self.trainer_config
        model.train()
        for _ in range(num_iterations):
            started = time.perf_counter()
            raw, target, weight = (t.to(device) for t in self._batch(model))
            optimizer.zero_grad()
            prediction = model(raw)
            loss = self.task.loss.compute(prediction, target, weight)
            if config.nan_at is not None and self.iteration == config.nan_at:
                loss = loss * float("nan")
            loss.backward()
            optimizer.step()
            self.scheduler.step()
            iteration = self.iteration
            self.iteration += 1
            interval = config.snapshot_interval
            if interval and self.snapshot_container is not None and self.iteration % interval == 0:
                write_array(self.snapshot_container, f"{iteration}/raw", raw.numpy(),
                            voxel_size=self.voxel_size)
                self.report_snapshot(iteration, self.snapshot_container)
            time.sleep(config.step_delay)
            yield TrainingIterationStats(iteration=iteration, loss=float(loss.item()),
                                         time=time.perf_counter() - started)
'''

#: Packages with a plugin author's mistakes; installed in their own site (see conftest).
AUTHOR_MISTAKES = ("dt-misnamed", "dt-undeclared", "dt-heavy", "dt-badsig")

#: distribution -> (module, version, core requirement, entry-point names, plugin source)
PACKAGES: dict[str, tuple[str, str, str, list[str], str]] = {
    "dt-good": (
        "dt_good",
        "1.2.0",
        "dacapo-trainers>=0.1",
        ["GoodTrainerConfig", "GoodAugmentConfig"],
        GOOD_PLUGIN,
    ),
    "dt-broken": ("dt_broken", "0.3.0", "dacapo-trainers", ["BrokenTrainerConfig"], BROKEN_PLUGIN),
    "dt-hookfail": (
        "dt_hookfail",
        "0.1.0",
        "dacapo-trainers",
        ["HookFailTrainerConfig"],
        HOOK_FAILS_PLUGIN,
    ),
    "dt-liar": ("dt_liar", "0.2.0", "dacapo-trainers", ["LiarTrainerConfig"], LIAR_PLUGIN),
    "dt-dup": ("dt_dup", "2.0.0", "dacapo-trainers", ["GoodTrainerConfig"], DUPLICATE_PLUGIN),
    "dt-tensor": ("dt_tensor", "0.5.0", "dacapo-trainers", ["TinyTrainerConfig"], TENSOR_PLUGIN),
    "dt-misnamed": ("dt_misnamed", "0.1.0", "dacapo-trainers", ["MixupTrainer"], MISNAMED_PLUGIN),
    "dt-undeclared": (
        "dt_undeclared",
        "0.1.0",
        "dacapo-trainers",
        ["CutmixTrainerConfig"],
        UNDECLARED_PLUGIN,
    ),
    "dt-heavy": ("dt_heavy", "0.1.0", "dacapo-trainers", ["HeavyTrainerConfig"], HEAVY_PLUGIN),
    "dt-badsig": (
        "dt_badsig",
        "0.1.0",
        "dacapo-trainers",
        ["BadSignatureTrainerConfig"],
        BAD_SIGNATURE_PLUGIN,
    ),
    "dt-incompat": (
        "dt_incompat",
        "0.1.0",
        "dacapo-trainers>=9",
        ["FutureTrainerConfig"],
        INCOMPATIBLE_PLUGIN,
    ),
}

GOOD_TRAINER = '''
"""A minimal real trainer (never run by the discovery tests; importing it needs torch)."""
'''


def write_package(root: Path, distribution: str) -> Path:
    """Write the source tree of one throwaway plugin distribution; returns its folder."""
    module, version, requirement, names, source = PACKAGES[distribution]
    folder = root / distribution
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text("")
    (folder / module / "plugin.py").write_text(textwrap.dedent(source))
    trainer = TENSOR_TRAINER if distribution == "dt-tensor" else GOOD_TRAINER
    (folder / module / "trainer.py").write_text(trainer)
    entry_points = "\n".join(f'{name} = "{module}.plugin"' for name in names)
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "{distribution}"
            version = "{version}"
            dependencies = ["{requirement}"]

            [project.entry-points.dacapo_trainers]
            """
        )
        + entry_points
        + f'\n\n[tool.hatch.build.targets.wheel]\npackages = ["{module}"]\n'
    )
    return folder


def pip_install_target(sources: list[Path], target: Path) -> None:
    """``pip install --no-deps --no-build-isolation --target target sources...`` for real."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            *map(str, sources),
        ],
        check=True,
    )
