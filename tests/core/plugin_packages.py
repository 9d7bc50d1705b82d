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
    (folder / module / "trainer.py").write_text(GOOD_TRAINER)
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
