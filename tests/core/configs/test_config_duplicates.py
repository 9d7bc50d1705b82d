"""A key given twice in a config file, or two datasets with one name, are refused.

YAML and JSON readers keep the last of two equal keys without a word, so a run file with
``learning_rate`` twice trains with whichever comes last. hypothesis places the duplicate at
any depth; ``validate`` and ``train`` run as real commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_helpers import CLI, run_data

from dacapo_trainers import ConfigError
from dacapo_trainers._configs._loading import read_config_file

_keys = st.text("abcdefgh_", min_size=1, max_size=6)
_nested: Any = st.recursive(
    st.dictionaries(_keys, st.integers(), min_size=1, max_size=3),
    lambda inner: st.dictionaries(_keys, inner | st.lists(inner, max_size=2), max_size=3),
    max_leaves=12,
).filter(lambda data: any(mapping for _, mapping in _paths(data)))


def _paths(value: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    """Every mapping in ``value`` with its config path."""
    found = []
    if isinstance(value, dict):
        found.append((path, value))
        for key, item in value.items():
            found += _paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, f"{path}[{index}]")
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=_nested, choice=st.data(), kind=st.sampled_from(["yaml", "json"]))
def test_a_key_given_twice_at_any_depth_is_refused_with_its_path(
    data: dict[str, Any], choice: st.DataObject, kind: str, tmp_path_factory: Any
) -> None:
    path, mapping = choice.draw(st.sampled_from([p for p in _paths(data) if p[1]]))
    key = choice.draw(st.sampled_from(sorted(mapping)))
    marker = "__DUPLICATE__"
    mapping[marker] = 0
    if kind == "json":
        text = json.dumps(data, indent=1).replace(f'"{marker}": 0', f'"{key}": 1')
    else:
        text = yaml.safe_dump(data, default_flow_style=False).replace(f"{marker}: 0", f"{key}: 1")
    file = tmp_path_factory.mktemp("dup") / f"config.{kind}"
    file.write_text(text)
    try:
        read_config_file(file)
    except ConfigError as error:
        assert [issue.path for issue in error.issues] == [f"{path}.{key}"]
        assert f"the key {key!r} is given twice" in str(error)
    else:
        raise AssertionError(f"accepted a duplicate {key!r} at {path}:\n{text}")


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    file = tmp_path / "merge.yaml"
    file.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n")
    assert read_config_file(file) == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}}


def test_the_commands_refuse_a_duplicate_learning_rate_and_two_datasets_with_one_name(
    tensor_cli: CLI, demo_zarr: Path, tmp_path: Path
) -> None:
    data = run_data(demo_zarr, tmp_path / "out")
    text = yaml.safe_dump(data).replace(
        "learning_rate: 0.01", "learning_rate: 0.01\n  learning_rate: 10"
    )
    (tmp_path / "twice.yaml").write_text(text)
    data["datasets"] = [data["datasets"][0], {**data["datasets"][0], "weight": 2.0}]
    (tmp_path / "same_name.json").write_text(json.dumps(data))
    for file, expected in [
        ("twice.yaml", "$.trainer_config.learning_rate: the key 'learning_rate' is given twice"),
        ("same_name.json", "$.datasets[1].name: 'demo' is also the name of $.datasets[0]"),
    ]:
        for command in (["validate"], ["train"]):
            result = tensor_cli(*command, str(tmp_path / file))
            assert result.returncode == 2, result.stderr
            assert expected in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
