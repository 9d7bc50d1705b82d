"""``dacapo-trainers new-plugin``: names, refusals, and a generated package that works."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from plugin_packages import pip_install_target

from dacapo_trainers._cli import main
from dacapo_trainers._scaffold import PluginNames, ScaffoldError, core_requirement, write_plugin


@pytest.mark.parametrize(
    ("name", "module", "trainer", "config"),
    [
        ("my-trainer", "my_trainer", "MyTrainer", "MyTrainerConfig"),
        ("fancy", "fancy", "FancyTrainer", "FancyTrainerConfig"),
        ("dacapo-trainers-lsd", "dacapo_trainers_lsd", "LsdTrainer", "LsdTrainerConfig"),
        ("unet2-sampler", "unet2_sampler", "Unet2SamplerTrainer", "Unet2SamplerTrainerConfig"),
    ],
)
def test_names(name: str, module: str, trainer: str, config: str) -> None:
    assert PluginNames.from_name(name) == PluginNames(name, module, trainer, config)


@pytest.mark.parametrize(
    ("type_name", "trainer"),
    [
        ("LsdConfig", "LsdTrainer"),
        ("LsdTrainerConfig", "LsdTrainer"),
        ("Affinities3dConfig", "Affinities3dTrainer"),
        ("XConfig", "XTrainer"),
    ],
)
def test_a_chosen_type_name_names_the_config_and_trainer(type_name: str, trainer: str) -> None:
    names = PluginNames.from_name("my-trainer", type_name)
    assert names == PluginNames("my-trainer", "my_trainer", trainer, type_name)


@pytest.mark.parametrize(
    ("name", "type_name", "advice"),
    [
        ("my-trainer", "lsdConfig", "invalid type name 'lsdConfig': use a CamelCase"),
        ("my-trainer", "Lsd", "ending in Config"),
        ("my-trainer", "Config", "invalid type name 'Config'"),
        ("my-trainer", "Lsd_Config", "letters and digits only"),
        ("my-trainer", "BatchTrainerConfig", "'BatchTrainer' would shadow dacapo_trainers"),
        ("my-trainer", "TrainerConfig", "choose another --type-name"),
        ("batch", None, "choose another plugin name (or a --type-name)"),
        ("my-trainer", "A" * 35 + "Config", "is 41 characters long; use at most 40"),
        ("a" * 41, None, "the plugin name 'aaaaaaaaa"),
    ],
)
def test_bad_type_names_are_refused(name: str, type_name: str | None, advice: str) -> None:
    with pytest.raises(ScaffoldError) as caught:
        PluginNames.from_name(name, type_name)
    assert advice in str(caught.value)


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("My Trainer", "use lowercase letters, digits and single hyphens"),
        ("my_trainer", "use lowercase letters, digits and single hyphens"),
        ("2d-trainer", "starting with a letter"),
        ("my--trainer", "single hyphens"),
        ("trainer-", "single hyphens"),
        ("json", "the module 'json' would shadow an existing module"),
        ("class", "would shadow a Python keyword"),
        ("torch", "would shadow an existing module"),
        ("attrs", "a module named 'attrs' is already installed"),
    ],
)
def test_bad_names_are_refused(name: str, advice: str) -> None:
    with pytest.raises(ScaffoldError, match="invalid plugin name") as caught:
        PluginNames.from_name(name)
    assert advice in str(caught.value)


@pytest.mark.parametrize(
    ("version", "requirement"),
    [
        ("0.1.0", "dacapo-trainers>=0.1,<0.2"),
        ("0.3.2.dev1", "dacapo-trainers>=0.3,<0.4"),
        ("1.4.2", "dacapo-trainers>=1.4,<2"),
        ("not a version", "dacapo-trainers"),
    ],
)
def test_core_requirement(version: str, requirement: str) -> None:
    assert core_requirement(version) == requirement


def test_cli_refuses_a_bad_name_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-plugin", "Not Valid", "--dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid plugin name 'Not Valid': use lowercase letters")
    assert not (tmp_path / "x").exists()


def test_cli_refuses_a_taken_type_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "simple-tensor", "--dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "the type name 'SimpleTensorTrainerConfig' is already provided by" in err


def test_cli_refuses_a_taken_chosen_type_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["new-plugin", "mine", "--type-name", "GunpowderTrainerConfig"]
    assert main([*arguments, "--dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "the type name 'GunpowderTrainerConfig' is already provided by" in err
    assert "--type-name" in err
    assert not (tmp_path / "x").exists()


def test_cli_refuses_a_bad_type_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["new-plugin", "mine", "--type-name", "mine", "--dir", str(tmp_path / "x")]
    assert main(arguments) == 2
    assert capsys.readouterr().err.startswith("error: invalid type name 'mine'")


def test_cli_refuses_a_folder_in_the_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["new-plugin", "my-trainer", "--dir", str(tmp_path / "busy")]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]


def test_cli_writes_the_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    destination = tmp_path / "pkg"
    assert main(["new-plugin", "my-trainer", "--dir", str(destination)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote my-trainer (10 files) to {destination}:")
    assert "pip install -e '.[test]'" in out
    assert (destination / "src" / "my_trainer" / "trainer.py").exists()


def test_cli_writes_the_chosen_type_name_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    destination = tmp_path / "pkg"
    arguments = ["new-plugin", "my-trainer", "--type-name", "LsdConfig", "--dir", str(destination)]
    assert main(arguments) == 0
    assert "lists LsdConfig" in capsys.readouterr().out
    texts = {
        str(path.relative_to(destination)): path.read_text()
        for path in destination.rglob("*")
        if path.is_file()
    }
    assert not [name for name, text in texts.items() if "MyTrainer" in text]
    project = tomllib.loads(texts["pyproject.toml"])
    assert project["project"]["entry-points"]["dacapo_trainers"] == {
        "LsdConfig": "my_trainer.plugin"
    }
    assert "class LsdConfig(BatchTrainerConfig):" in texts["src/my_trainer/config.py"]
    assert '"my_trainer.trainer:LsdTrainer"' in texts["src/my_trainer/config.py"]
    assert "class LsdTrainer(BatchTrainer):" in texts["src/my_trainer/trainer.py"]
    assert "class TestLsdTrainerConformance(" in texts["tests/test_my_trainer_conformance.py"]
    assert "__type__: LsdConfig" in texts["README.md"]


def test_the_package_is_complete(tmp_path: Path) -> None:
    written = write_plugin("my-trainer", tmp_path / "pkg", core="0.1.0")
    relative = sorted(str(p.relative_to(tmp_path / "pkg")) for p in written)
    assert relative == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/my_trainer/__init__.py",
        "src/my_trainer/config.py",
        "src/my_trainer/plugin.py",
        "src/my_trainer/py.typed",
        "src/my_trainer/trainer.py",
        "tests/test_my_trainer_config.py",
        "tests/test_my_trainer_conformance.py",
    ]
    for path in written:
        if path.suffix == ".py":
            ast.parse(path.read_text(), str(path))  # valid Python, no leftover placeholders
        assert "${" not in path.read_text(), path
    project = tomllib.loads((tmp_path / "pkg" / "pyproject.toml").read_text())
    assert project["project"]["name"] == "my-trainer"
    assert "dacapo-trainers>=0.1,<0.2" in project["project"]["dependencies"]
    assert project["project"]["entry-points"]["dacapo_trainers"] == {
        "MyTrainerConfig": "my_trainer.plugin"
    }
    assert project["build-system"]["build-backend"] == "hatchling.build"
    plugin = (tmp_path / "pkg" / "src" / "my_trainer" / "plugin.py").read_text()
    config = (tmp_path / "pkg" / "src" / "my_trainer" / "config.py").read_text()
    for source in (plugin, config):  # the lazy-import rule, at the source level
        assert "import torch" not in source
    assert '"my_trainer.trainer:MyTrainer"' in config
    tests = (tmp_path / "pkg" / "tests" / "test_my_trainer_conformance.py").read_text()
    assert "class TestMyTrainerConformance(TrainerConformance):" in tests


def test_an_empty_destination_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert write_plugin("my-trainer", tmp_path / "empty")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A generated plugin, with a chosen type name, pip-installed into a folder.

    Returns (package source, site folder).
    """
    root = tmp_path_factory.mktemp("scaffold")
    source = root / "scaffolded-trainer"
    write_plugin("scaffolded-trainer", source, type_name="ScaffoldedLsdConfig")
    site = root / "site"
    pip_install_target([source], site)
    return source, site


def run(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DACAPO_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_the_installed_plugin_is_listed(installed: tuple[Path, Path]) -> None:
    _, site = installed
    result = run(site, "-m", "dacapo_trainers", "plugins", "--json")
    assert result.returncode == 0, result.stderr
    records = {r["type"]: r for r in json.loads(result.stdout)}
    record = records["ScaffoldedLsdConfig"]
    assert (record["distribution"], record["state"]) == ("scaffolded-trainer", "ok")
    table = run(site, "-m", "dacapo_trainers", "plugins").stdout
    assert "ScaffoldedLsdConfig" in table


@pytest.mark.slow
def test_the_installed_plugin_is_shown_without_torch(installed: tuple[Path, Path]) -> None:
    _, site = installed
    code = (
        "import sys; from dacapo_trainers._cli import main; "
        "status = main(['show', 'ScaffoldedLsdConfig']); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(status)"
    )
    result = run(site, "-c", code)
    assert result.returncode == 0, result.stderr
    assert "snapshot_interval: int | None = None" in result.stdout


@pytest.mark.slow
def test_the_generated_tests_pass(installed: tuple[Path, Path]) -> None:
    source, site = installed
    result = run(site, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=source)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout


# -- the line limit the generated package sets itself ------------------------------------------

LONGEST_NAME = "abcdefghij-klmnopqrstu-vwxyzabcd-trainer"
LONGEST_TYPE = "AbcdefghijklmnopqrstuvwxyzabcdefghConfig"


def test_the_longest_names_keep_the_packages_line_limit(tmp_path: Path) -> None:
    assert_line_limit_kept(tmp_path, base=None)  # with a base: test_scaffold_base.py


def assert_line_limit_kept(tmp_path: Path, base: str | None) -> None:
    """The longest names the scaffold takes keep the generated package's line limit."""
    assert (len(LONGEST_NAME), len(LONGEST_TYPE)) == (40, 40)
    written = write_plugin(LONGEST_NAME, tmp_path / "pkg", type_name=LONGEST_TYPE, base=base)
    limit = tomllib.loads((tmp_path / "pkg" / "pyproject.toml").read_text())["tool"]["ruff"]
    too_long = [
        f"{path.name}:{number}"
        for path in written
        if path.suffix == ".py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > limit["line-length"]
    ]
    assert too_long == []
    for path in written:
        if path.suffix == ".py":
            ast.parse(path.read_text())  # still Python where a long value was wrapped


def test_the_test_extra_brings_hypothesis(tmp_path: Path) -> None:
    write_plugin("my-trainer", tmp_path / "pkg")
    project = tomllib.loads((tmp_path / "pkg" / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("hypothesis") for r in project["optional-dependencies"]["test"])


def test_an_unknown_base_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    destination = tmp_path / "pkg"
    arguments = ["new-plugin", "my-trainer", "--base", "NoSuchTrainerConfig"]
    assert main([*arguments, "--dir", str(destination)]) == 2
    assert "--base NoSuchTrainerConfig: unknown trainer type" in capsys.readouterr().err
    assert not destination.exists()
