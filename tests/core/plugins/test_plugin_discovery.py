"""Discovery, lazy selection and plugin failure isolation, against really installed plugins."""

from __future__ import annotations

import json
from pathlib import Path

from run_helpers import CLI

from dacapo_trainers._plugins._known import install_command

GOOD_CONFIG = {
    "__type__": "GoodTrainerConfig",
    "name": "good",
    "batch_size": 2,
    "learning_rate": 0.001,
    "augments": [{"__type__": "GoodAugmentConfig", "scale": 2.0}],
}


def write_json(tmp_path: Path, data: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def states(
    cli: CLI, *args: str, status: int = 0, **env: str
) -> dict[tuple[str, str], dict[str, str]]:
    result = cli("plugins", "--json", *args, **env)
    assert result.returncode == status, result.stderr
    return {(r["type"], r["distribution"]): r for r in json.loads(result.stdout)}


def test_listing_reads_metadata_only(cli: CLI) -> None:
    listed = states(cli)
    assert listed[("GoodAugmentConfig", "dt-good")]["version"] == "1.2.0"
    assert listed[("BrokenTrainerConfig", "dt-broken")]["state"] == "ok"  # not imported yet
    incompatible = listed[("FutureTrainerConfig", "dt-incompat")]
    assert incompatible["state"] == "incompatible"
    assert "dacapo-trainers>=9" in incompatible["error"]
    assert listed[("GoodTrainerConfig", "dt-good")]["state"] == "duplicate"
    assert cli.imported() == []


def test_listing_never_imports_torch_or_plugins(cli: CLI) -> None:
    code = (
        "import sys; from dacapo_trainers._cli import main; main(['plugins']); "
        "bad = [m for m in ('torch', 'gunpowder', 'dt_good', 'dt_broken', "
        "'dacapo_trainers_gunpowder', 'dacapo_trainers_simple_tensor', "
        "'dacapo_trainers.reference.plugin') if m in sys.modules]; "
        "assert not bad, bad"
    )
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", code], env=cli.env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "GoodTrainerConfig" in result.stdout


def test_check_marks_broken_plugins_with_their_error(cli: CLI) -> None:
    listed = states(cli, "--check", status=1, DACAPO_TRAINERS_DISABLE="dt-dup")
    broken = listed[("BrokenTrainerConfig", "dt-broken")]
    assert broken["state"] == "broken"
    assert broken["error"] == "ImportError: needs libfoo, which is not installed"
    assert listed[("HookFailTrainerConfig", "dt-hookfail")]["error"] == (
        "RuntimeError: hook exploded"
    )
    assert listed[("GoodTrainerConfig", "dt-good")]["state"] == "ok"
    assert listed[("GoodTrainerConfig", "dt-dup")]["state"] == "disabled"


def test_selection_imports_only_the_selected_plugin(cli: CLI, tmp_path: Path) -> None:
    result = cli(
        "validate", str(write_json(tmp_path, GOOD_CONFIG)), DACAPO_TRAINERS_DISABLE="dt-dup"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {**GOOD_CONFIG, "snapshot_interval": None}
    assert cli.imported() == ["dt_good.plugin"]


def test_broken_plugin_is_isolated_and_explained(cli: CLI, tmp_path: Path) -> None:
    config = {"__type__": "BrokenTrainerConfig", "name": "b", "batch_size": 1, "learning_rate": 1}
    result = cli("validate", str(write_json(tmp_path, config)))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "dt-broken 0.3.0 is broken" in result.stderr
    assert "ImportError: needs libfoo, which is not installed" in result.stderr
    assert "DACAPO_TRAINERS_DISABLE=dt-broken" in result.stderr
    assert "caused by ImportError: needs libfoo" in result.stderr
    assert "dt_broken/plugin.py" in result.stderr
    # the good plugin still works in the same environment
    good = cli(
        "validate",
        str(write_json(tmp_path, GOOD_CONFIG, "good.json")),
        DACAPO_TRAINERS_DISABLE="dt-dup",
    )
    assert good.returncode == 0, good.stderr


def test_hook_that_raises_is_reported(cli: CLI, tmp_path: Path) -> None:
    config = {"__type__": "HookFailTrainerConfig", "name": "h", "batch_size": 1, "learning_rate": 1}
    result = cli("validate", str(write_json(tmp_path, config)))
    assert result.returncode == 2
    assert "dt-hookfail 0.1.0 is broken: calling its hooks" in result.stderr
    assert "RuntimeError: hook exploded" in result.stderr


def test_plugin_not_providing_its_promise_is_a_contract_error(cli: CLI, tmp_path: Path) -> None:
    config = {"__type__": "LiarTrainerConfig", "name": "l", "batch_size": 1, "learning_rate": 1}
    result = cli("validate", str(write_json(tmp_path, config)))
    assert result.returncode == 2
    assert "dt-liar 0.2.0 declares entry point 'LiarTrainerConfig'" in result.stderr
    assert "returned SomethingElseConfig" in result.stderr


def test_duplicate_type_names_both_distributions(cli: CLI, tmp_path: Path) -> None:
    result = cli("validate", str(write_json(tmp_path, GOOD_CONFIG)))
    assert result.returncode == 2
    assert "dt-dup 2.0.0 and dt-good 1.2.0" in result.stderr
    assert "uninstall one of them" in result.stderr
    assert "DACAPO_TRAINERS_DISABLE=" in result.stderr
    assert cli.imported() == []


def test_incompatible_plugin_is_not_loaded(cli: CLI, tmp_path: Path) -> None:
    config = {"__type__": "FutureTrainerConfig", "name": "f", "batch_size": 1, "learning_rate": 1}
    result = cli("validate", str(write_json(tmp_path, config)))
    assert result.returncode == 2
    assert "dt-incompat 0.1.0" in result.stderr
    assert "requires dacapo-trainers>=9" in result.stderr
    assert cli.imported() == []


def test_disable_autoload(good_cli: CLI, tmp_path: Path) -> None:
    listed = states(good_cli, DACAPO_TRAINERS_DISABLE_AUTOLOAD="1")
    assert listed[("GoodTrainerConfig", "dt-good")]["state"] == "disabled"
    assert "autoload is off" in listed[("GoodTrainerConfig", "dt-good")]["error"]
    result = good_cli(
        "validate", str(write_json(tmp_path, GOOD_CONFIG)), DACAPO_TRAINERS_DISABLE_AUTOLOAD="1"
    )
    assert result.returncode == 2
    assert "is disabled" in result.stderr
    assert good_cli.imported() == []


def test_disable_by_type_name(good_cli: CLI) -> None:
    listed = states(good_cli, DACAPO_TRAINERS_DISABLE="GoodAugmentConfig")
    assert listed[("GoodAugmentConfig", "dt-good")]["state"] == "disabled"
    assert listed[("GoodTrainerConfig", "dt-good")]["state"] == "ok"


def test_unknown_type_suggests_and_names_package(good_cli: CLI, tmp_path: Path) -> None:
    misspelled = {**GOOD_CONFIG, "__type__": "GoodTrainerConfg"}
    result = good_cli("validate", str(write_json(tmp_path, misspelled)))
    assert result.returncode == 2
    assert "unknown trainer type 'GoodTrainerConfg' (did you mean 'GoodTrainerConfig'?)" in (
        result.stderr
    )
    gunpowder = {
        "__type__": "GunpowderTrainerConfg",
        "name": "g",
        "batch_size": 1,
        "learning_rate": 1,
    }
    result = good_cli(
        "validate",
        str(write_json(tmp_path, gunpowder, "gp.json")),
        DACAPO_TRAINERS_DISABLE="dacapo-trainers-gunpowder",
    )
    assert result.returncode == 2
    assert "did you mean 'GunpowderTrainerConfig'?" in result.stderr
    install = install_command("dacapo-trainers-gunpowder")  # a folder, from a checkout
    assert f"provided by dacapo-trainers-gunpowder: {install}" in result.stderr


def test_validate_reports_paths(good_cli: CLI, tmp_path: Path) -> None:
    bad = {
        **GOOD_CONFIG,
        "augments": [
            {"__type__": "GoodAugmentConfig", "scale": 1},
            {"__type__": "GoodAugmentConfig", "scale": "big"},
        ],
    }
    result = good_cli("validate", str(write_json(tmp_path, bad)))
    assert result.returncode == 2
    assert "$.augments[1].scale: expected float, got 'big'" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_and_schema(good_cli: CLI) -> None:
    shown = good_cli("show", "GoodTrainerConfig")
    assert shown.returncode == 0, shown.stderr
    assert "GoodTrainerConfig  (dt-good 1.2.0)" in shown.stdout
    assert "name: str  (required)" in shown.stdout
    assert "batch_size: int = 1" in shown.stdout  # DaCapo main's run-level default
    assert "snapshot_interval: int | None = None" in shown.stdout
    assert "Snapshot every this many iterations." in shown.stdout
    schema = good_cli("schema", "GoodTrainerConfig")
    assert schema.returncode == 0, schema.stderr
    document = json.loads(schema.stdout)
    assert document["properties"]["__type__"] == {
        "const": "GoodTrainerConfig",
        "description": "The config type.",
    }
    assert set(document["required"]) == {"__type__", "name"}
    assert document["properties"]["batch_size"]["default"] == 1
    assert document["properties"]["augments"]["items"] == {
        "oneOf": [{"$ref": "#/$defs/GoodAugmentConfig"}]
    }
    assert document["$defs"]["GoodAugmentConfig"]["properties"]["scale"]["default"] == 1.0


# -- a plugin author's usual mistakes: each gets the fix, not a riddle ---------------------------


def _trainer(type_name: str) -> dict[str, object]:
    return {"__type__": type_name, "name": "t", "batch_size": 1, "learning_rate": 0.1}


def test_check_exits_non_zero_and_names_the_entry_point_fix(mistakes_cli: CLI) -> None:
    result = mistakes_cli("plugins", "--check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "rename the entry point 'MixupTrainer' to 'MixupTrainerConfig'" in result.stdout
    assert "cannot be used: " in result.stderr and "MixupTrainer (broken)" in result.stderr


def test_check_runs_the_field_rules_of_the_kit(mistakes_cli: CLI) -> None:
    result = mistakes_cli("plugins", "--check")
    assert result.returncode == 1
    assert (
        "error: CutmixTrainerConfig.alpha has no annotation, so the config layer cannot check "
        "its type"
    ) in result.stderr
    assert "annotate it: `alpha: float = attrs.field(...)`" in result.stderr


def test_listing_without_check_calls_no_unimported_plugin_ok(mistakes_cli: CLI) -> None:
    table = mistakes_cli("plugins").stdout.splitlines()
    [misnamed] = [line for line in table if line.startswith("MixupTrainer ")]
    assert misnamed.endswith("found (not imported; --check imports it)")
    builtin = [line for line in table if line.startswith("UNetConfig ")]
    assert builtin and builtin[0].endswith("  ok")
    checked = mistakes_cli("plugins", "--check").stdout.splitlines()
    [misnamed] = [line for line in checked if line.startswith("MixupTrainer ")]
    assert "broken: plugin dt-misnamed 0.1.0 declares entry point 'MixupTrainer'" in misnamed


def test_check_passes_where_nothing_is_wrong(good_cli: CLI) -> None:
    result = good_cli("plugins", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr


def test_validate_suggests_the_entry_point_fix(mistakes_cli: CLI, tmp_path: Path) -> None:
    result = mistakes_cli("validate", str(write_json(tmp_path, _trainer("MixupTrainerConfig"))))
    assert result.returncode == 2
    assert "unknown trainer type 'MixupTrainerConfig'" in result.stderr
    assert "declares it as entry point 'MixupTrainer'" in result.stderr
    assert "rename the entry point to 'MixupTrainerConfig'" in result.stderr
    assert "did you mean 'MixupTrainer'" not in result.stderr


def test_validate_suggests_the_missing_entry_point(mistakes_cli: CLI, tmp_path: Path) -> None:
    config = {**_trainer("CutmixTrainerConfig"), "__type__": "CutmixTrainerConfig"}
    assert mistakes_cli("validate", str(write_json(tmp_path, config))).returncode == 0
    augment = {"__type__": "CutmixAugmentConfig", "size": 2}
    result = mistakes_cli("validate", str(write_json(tmp_path, augment, "augment.json")))
    assert result.returncode == 2
    assert "dt-undeclared 0.1.0 provides a class named 'CutmixAugmentConfig'" in result.stderr
    assert 'add `CutmixAugmentConfig = "dt_undeclared.plugin"`' in result.stderr


def test_check_reports_a_heavy_import_on_selection(mistakes_cli: CLI) -> None:
    result = mistakes_cli("plugins", "--check")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "'HeavyTrainerConfig' (dt-heavy 0.1.0) imports torch" in warnings[0]
    assert "dt_heavy/plugin.py" in warnings[0] and "import torch" in warnings[0]


def test_a_bad_hook_signature_keeps_pluggys_whole_message(
    mistakes_cli: CLI, tmp_path: Path
) -> None:
    config = _trainer("BadSignatureTrainerConfig")
    result = mistakes_cli("validate", str(write_json(tmp_path, config)))
    assert result.returncode == 2
    assert "dt-badsig 0.1.0 is broken" in result.stderr
    # pluggy's fault, not only its first line ("Plugin ... for hook ...")
    assert "registry" in result.stderr and "hookspec" in result.stderr


def test_a_runtime_plugin_error_keeps_the_object_and_the_fault() -> None:
    import pytest

    from dacapo_trainers import PluginLoadError, Registry, hookimpl

    class WrongSignature:
        @hookimpl
        def dacapo_trainers_trainer_configs(self, unexpected: object) -> list[type]:
            return []

    plugin = WrongSignature()
    with pytest.raises(PluginLoadError) as caught:
        Registry.isolated(plugin)
    assert caught.value.plugin is plugin
    message = str(caught.value)
    assert "WrongSignature object" in message  # a readable plugin name, not an id
    assert "unexpected" in message and "hookspec" in message
