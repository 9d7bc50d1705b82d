"""Both batch trainers train from a container on a real S3 server (moto, on 127.0.0.1), through
the CLI, endpoint and keys given the standard way (AWS_* variables). The gunpowder trainer reads
every crop lazily in forked data workers (nothing preloaded), each with its own connection.

Each test needs its plugin and skips without it; nox runs this file in the sessions that
install the plugin (tests-simple-tensor, tests-gunpowder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from remote_servers import moto_server, s3_environment, upload

from dacapo_trainers._outputs._observers import read_stats
from dacapo_trainers.reference import make_demo_data

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    local = make_demo_data(tmp_path_factory.mktemp("data") / "demo.zarr", shape=(40, 40, 40))
    with moto_server() as endpoint:
        upload(endpoint, local, "cells", "demo.zarr")
        yield endpoint


def simple_tensor() -> dict[str, Any]:
    return {"__type__": "SimpleTensorTrainerConfig", "name": "simple", "batch_size": 1}


def gunpowder() -> dict[str, Any]:
    return {
        "__type__": "GunpowderTrainerConfig",
        "name": "gunpowder",
        "batch_size": 1,
        "num_data_fetchers": 2,
        "preload_limit_mb": 0,  # every crop read from S3 in the forked workers
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("plugin", "trainer"),
    [("dacapo_trainers_simple_tensor", simple_tensor), ("dacapo_trainers_gunpowder", gunpowder)],
)
def test_trains_from_s3(s3: str, tmp_path: Path, plugin: str, trainer: Any) -> None:
    pytest.importorskip(plugin)
    run = {
        "name": "remote",
        "trainer_config": {**trainer(), "learning_rate": 1e-3},
        "architecture_config": {
            "__type__": "UNetConfig",
            "name": "unet",
            "input_shape": [20, 20, 20],
            "num_fmaps": 2,
            "downsample_factors": [[2, 2, 2]],
        },
        "task_config": {"__type__": "AffinitiesTaskConfig", "name": "affs"},
        "datasets": [
            {"__type__": "ZarrDatasetConfig", "name": "demo", "container": "s3://cells/demo.zarr"}
        ],
        "num_iterations": 4,
        "checkpoint_interval": 4,
        "device": "cpu",
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    result = subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", "train", str(path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, **s3_environment(s3)},
    )
    assert result.returncode == 0, result.stderr
    stats = read_stats(tmp_path / "runs" / "remote" / "stats.jsonl")
    assert [s.iteration for s in stats] == [0, 1, 2, 3]
    assert all(np.isfinite(s.loss) for s in stats)
