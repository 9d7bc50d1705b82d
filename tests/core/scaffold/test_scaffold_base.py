"""``dacapo-trainers new-plugin --base TYPE``: packages deriving from an installed first-party
trainer. Run in the plugin sessions (``CORE_PLUGIN_TESTS``): each test needs the plugin that
provides its base, and skips in the session that lacks it, so that each runs in the other.
"""

from __future__ import annotations

import tomllib
from importlib.util import find_spec
from pathlib import Path

import pytest
from plugin_packages import pip_install_target
from test_scaffold import assert_line_limit_kept, run

from dacapo_trainers._cli import main
from dacapo_trainers._scaffold import write_plugin

#: The module that provides each base type used here.
PROVIDERS = {
    "GunpowderTrainerConfig": "dacapo_trainers_gunpowder",
    "ElasticAugmentConfig": "dacapo_trainers_gunpowder",
    "SimpleTensorTrainerConfig": "dacapo_trainers_simple_tensor",
}


def needs(type_name: str) -> None:
    """Skip where the plugin providing ``type_name`` is not installed (another session has it)."""
    if find_spec(PROVIDERS[type_name]) is None:
        pytest.skip(f"{type_name}'s plugin is not installed in this session")


def test_the_longest_names_keep_the_line_limit_with_a_base(tmp_path: Path) -> None:
    needs("GunpowderTrainerConfig")
    assert_line_limit_kept(tmp_path, base="GunpowderTrainerConfig")


def test_a_derived_package_subclasses_the_base_and_depends_on_it(tmp_path: Path) -> None:
    needs("GunpowderTrainerConfig")
    destination = tmp_path / "pkg"
    write_plugin("cutout-trainer", destination, base="GunpowderTrainerConfig")
    texts = {
        str(path.relative_to(destination)): path.read_text()
        for path in destination.rglob("*")
        if path.is_file()
    }
    config = texts["src/cutout_trainer/config.py"]
    assert "from dacapo_trainers_gunpowder import GunpowderTrainerConfig" in config
    assert "class CutoutTrainerConfig(GunpowderTrainerConfig):" in config
    assert '"cutout_trainer.trainer:CutoutTrainer"' in config
    trainer = texts["src/cutout_trainer/trainer.py"]
    assert "from dacapo_trainers_gunpowder import GunpowderTrainer" in trainer
    assert "class CutoutTrainer(GunpowderTrainer):" in trainer
    project = tomllib.loads(texts["pyproject.toml"])["project"]
    assert "dacapo-trainers-gunpowder>=0.1,<0.2" in project["dependencies"]
    conformance = texts["tests/test_cutout_trainer_conformance.py"]
    # the kit's quick values, and the base plugin's own (one data worker process fewer)
    assert '"warmup_iterations": 5' in conformance and '"num_data_fetchers": 2' in conformance
    assert "BatchTrainer):" not in trainer and "class _Volume" not in trainer


@pytest.mark.parametrize(
    ("base", "advice"),
    [
        (
            "ElasticAugmentConfig",
            "ElasticAugmentConfig derives from AugmentConfig, not TrainerConfig",
        ),
    ],
)
def test_a_base_that_is_no_installed_trainer_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], base: str, advice: str
) -> None:
    needs(base)
    destination = tmp_path / "pkg"
    assert main(["new-plugin", "my-trainer", "--base", base, "--dir", str(destination)]) == 2
    assert advice in capsys.readouterr().err
    assert not destination.exists()


@pytest.mark.slow
@pytest.mark.parametrize("base", ["GunpowderTrainerConfig", "SimpleTensorTrainerConfig"])
def test_a_derived_package_passes_its_own_tests(tmp_path: Path, base: str) -> None:
    """As an author would: generate with --base, install, run the generated tests."""
    needs(base)
    source = tmp_path / "cutout-trainer"
    write_plugin("cutout-trainer", source, base=base)
    site = tmp_path / "site"
    pip_install_target([source], site)
    result = run(site, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=source)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout
