"""DistributedTrainerConfig: the config layer, without starting any process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import attrs
import pytest

from dacapo_trainers import (
    ConfigError,
    TrainerConfig,
    default_registry,
    json_schema,
    structure_config,
    unstructure_config,
)
from dacapo_trainers_distributed import DistributedTrainerConfig, rank_seed
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig

INNER: dict[str, Any] = {
    "__type__": "SimpleTensorTrainerConfig",
    "name": "simple",
    "batch_size": 3,
    "learning_rate": 0.001,
    "optimizer": "SGD",
}


def distributed(**fields: Any) -> dict[str, Any]:
    return {"__type__": "DistributedTrainerConfig", "trainer_config": dict(INNER), **fields}


def test_round_trip_with_nested_inner_config() -> None:
    data = distributed(nproc_per_node=4, timeout=30, max_restarts=2, rdzv_endpoint="n1:29400")
    config = structure_config(data, TrainerConfig)
    assert isinstance(config, DistributedTrainerConfig)
    assert isinstance(config.trainer_config, SimpleTensorTrainerConfig)
    assert config.trainer_config.optimizer == "SGD"
    plain = unstructure_config(config)
    assert plain["__type__"] == "DistributedTrainerConfig"
    assert plain["trainer_config"]["__type__"] == "SimpleTensorTrainerConfig"
    assert structure_config(json.loads(json.dumps(plain))) == config


def test_name_batch_size_and_learning_rate_default_to_the_inner_configs() -> None:
    config = structure_config(distributed())
    assert isinstance(config, DistributedTrainerConfig)
    assert (config.name, config.batch_size, config.learning_rate) == ("simple", 3, 0.001)
    assert config.backend == "auto"
    assert config.nnodes == 1
    assert not config.is_multi_node
    same = structure_config(distributed(batch_size=3, learning_rate=0.001, name="ddp"))
    assert isinstance(same, DistributedTrainerConfig)
    assert same.name == "ddp"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"batch_size": 6}, "$.batch_size: 6 differs from the inner trainer_config's 3"),
        ({"learning_rate": 0.002}, "$.learning_rate: 0.002 differs from the inner"),
        ({"backend": "mpi"}, "$.backend: must be one of auto, gloo, nccl; got 'mpi'"),
        ({"timeout": 0}, "$.timeout: must be positive (seconds), got 0"),
        ({"nproc_per_node": 0}, "$.nproc_per_node: must be at least 1 or None, got 0"),
        ({"nnodes": 2, "max_nnodes": 1}, "$.max_nnodes: must be at least nnodes (2), got 1"),
        ({"max_restarts": -1}, "$.max_restarts: must be at least 0, got -1"),
    ],
)
def test_invalid_fields_are_config_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        structure_config(distributed(**fields))
    assert message in str(caught.value)


def test_nesting_a_distributed_config_is_refused() -> None:
    nested = {"__type__": "DistributedTrainerConfig", "trainer_config": distributed()}
    with pytest.raises(ConfigError) as caught:
        structure_config(nested)
    assert "wrap the trainer once" in str(caught.value)


def test_every_field_has_help_text_and_a_schema() -> None:
    for field in attrs.fields(DistributedTrainerConfig):
        assert field.metadata.get("help_text"), field.name
    registry = default_registry()
    schema = json_schema(DistributedTrainerConfig, registry)
    assert schema["title"] == "DistributedTrainerConfig"
    assert "trainer_config" in schema["properties"]
    assert "default" not in schema["properties"]["batch_size"]  # the inner's, not a constant


def test_the_entry_point_provides_the_config() -> None:
    assert default_registry().get("DistributedTrainerConfig") is DistributedTrainerConfig


def test_config_and_plugin_modules_import_no_torch() -> None:
    code = (
        "import sys, dacapo_trainers_distributed, dacapo_trainers_distributed.plugin; "
        "from dacapo_trainers import structure_config; "
        f"structure_config({distributed()!r}); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_rank_seeds_differ_per_rank_and_rank_0_keeps_the_run_seed() -> None:
    seeds = [rank_seed(7, rank) for rank in range(64)]
    assert seeds[0] == 7
    assert len(set(seeds)) == 64
    assert all(0 <= seed < 2**62 for seed in seeds[1:])
    assert rank_seed(8, 1) != rank_seed(7, 1)
    assert rank_seed(7, 1) == seeds[1]
    with pytest.raises(ValueError):
        rank_seed(7, -1)
