"""Every registered config type survives JSON: a run using any value `validate` accepts resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from run_helpers import CLI

from dacapo_trainers import ConfigConverter, ConfigError, TaggedConfig, default_registry
from dacapo_trainers.testing import tiny_run_data
from dacapo_trainers.testing._round_trip import config_data, round_trip_problem

REGISTRY = default_registry()
TYPES = REGISTRY.load_all()
#: Valid values of fields that must fit one another (a network's shapes), drawn half the time.
KNOWN: dict[str, dict[str, Any]] = {
    "CNNectomeUNetConfig": {
        "input_shape": [28, 28, 28],
        "downsample_factors": [[2, 2, 2]],
        "fmaps_in": 1,
        "fmaps_out": 4,
        "num_fmaps": 4,
        "fmap_inc_factor": 2,
    },
    # one entry per spatial dimension in the two lists (random lengths rarely agree)
    "DeformAugmentConfig": {
        "control_point_spacing": [4, 4, 4],
        "jitter_sigma": [1.0, 1.0, 1.0],
        "spatial_dims": 3,
    },
}


@pytest.mark.parametrize("type_name", sorted(TYPES))
def test_every_value_of_every_registered_type_round_trips(type_name: str) -> None:
    cls = TYPES[type_name]
    converter = ConfigConverter(REGISTRY)

    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(config_data(cls, REGISTRY, known=KNOWN.get(type_name)))
    def check(data: dict[str, Any]) -> None:
        try:
            config = converter.structure(data, cls)
        except ConfigError:
            reject()
        assert round_trip_problem(config, converter) is None

    check()


@attrs.define(kw_only=True)
class PairConfig(TaggedConfig):
    """A config with the field types that once broke resuming (tuples)."""

    interval: tuple[float, float] = (0.0, 1.0)
    sizes: tuple[int, ...] = (1, 2)


@given(
    st.tuples(st.floats(allow_nan=False), st.floats(allow_nan=False)),
    st.lists(st.integers(), max_size=4),
)
def test_tuple_fields_unstructure_to_json_lists(
    interval: tuple[float, float], sizes: list[int]
) -> None:
    config = PairConfig(interval=interval, sizes=tuple(sizes))
    data = ConfigConverter(REGISTRY).unstructure(config)
    assert data["interval"] == list(interval) and data["sizes"] == sizes
    assert json.loads(json.dumps(data)) == data


def test_round_trip_problem_names_a_config_that_changes_through_json() -> None:
    @attrs.define(kw_only=True)
    class SetConfig(TaggedConfig):
        tags: frozenset[str] = frozenset({"a"})

    problem = round_trip_problem(SetConfig(), ConfigConverter(REGISTRY))
    assert problem is not None and "SetConfig" in problem


def test_a_run_stored_by_an_older_version_resumes(tensor_cli: CLI, tmp_path: Path) -> None:
    """A field added since the run started (absent from run_config.json) is not a change."""
    from dacapo_trainers.reference import make_demo_data

    demo = make_demo_data(tmp_path / "demo.zarr", shape=(40, 40, 40))
    trainer = {"__type__": "TinyTrainerConfig", "name": "t", "batch_size": 1}
    run = tiny_run_data(
        {**trainer, "learning_rate": 0.01},
        demo,
        tmp_path / "out",
        name="old",
        num_iterations=2,
        checkpoint_interval=2,
    )
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(run))
    assert tensor_cli("train", str(run_file), "--quiet").returncode == 0
    stored_path = tmp_path / "out" / "run_config.json"
    stored = json.loads(stored_path.read_text())
    del stored["task_config"]["balance_weights"]  # as if written before the field existed
    stored_path.write_text(json.dumps(stored))
    run["num_iterations"] = 4
    run_file.write_text(yaml.safe_dump(run))
    result = tensor_cli("train", str(run_file))
    assert result.returncode == 0, result.stderr
    assert "resumed from 2" in result.stdout
