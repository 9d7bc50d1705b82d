"""Containers at s3:// and http:// URLs, read from real servers on 127.0.0.1: moto's S3 server
and ``python -m http.server``. zarr format 2 or 3 (whichever zarr writes here: this file runs
with zarr 2 and zarr 3), OME-NGFF, DaCapo's ZarrArrayConfig, lazy reads with a chunk cache
that survives a fork, and the one-line errors of unreachable, missing and read-only data."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from dacapo_written import dummy_trainer
from remote_servers import (
    authorized_user,
    free_port,
    http_server,
    moto_server,
    s3_environment,
    s3_options,
    upload,
)

from dacapo_trainers import ZarrContainer, open_array, write_array
from dacapo_trainers._configs._converter import structure_config, unstructure_config
from dacapo_trainers.reference import ZarrArrayConfig, ZarrDatasetConfig, make_demo_data

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

#: Bound on every command here: the errors must come well within it (timeouts, retries).
COMMAND_LIMIT_S = 120


def write_ome(folder: Path) -> Path:
    """An OME-NGFF v0.4 image (one scale, zarr format 2) with a shifted origin."""
    import zarr

    folder.mkdir(parents=True)
    (folder / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    axes = [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"]
    transforms = [
        {"type": "scale", "scale": [8.0, 4.0, 4.0]},
        {"type": "translation", "translation": [16.0, 8.0, 0.0]},
    ]
    image = {"version": "0.4", "axes": axes, "datasets": [{"path": "s0"}]}
    image["datasets"][0]["coordinateTransformations"] = transforms  # type: ignore[index]
    (folder / ".zattrs").write_text(json.dumps({"multiscales": [image]}))
    extra = {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}
    array = zarr.open_array(
        str(folder / "s0"), mode="w", shape=(6, 6, 6), dtype="uint16", chunks=(3, 3, 3), **extra
    )
    array[...] = np.arange(216, dtype="uint16").reshape(6, 6, 6)
    return folder


@pytest.fixture(scope="module")
def local_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("served")
    make_demo_data(folder / "demo.zarr", shape=(40, 40, 40))
    write_ome(folder / "ome.zarr" / "raw")
    return folder


@pytest.fixture(scope="module")
def s3(local_data: Path) -> Iterator[str]:
    with moto_server() as endpoint:
        upload(endpoint, local_data / "demo.zarr", "cells", "demo.zarr")
        upload(endpoint, local_data / "ome.zarr", "cells", "ome.zarr")
        yield endpoint


@pytest.fixture
def s3_env(s3: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in s3_environment(s3).items():
        monkeypatch.setenv(name, value)
    return s3


def same(remote: Any, local: Any) -> None:
    assert remote.voxel_size == local.voxel_size and remote.offset == local.offset
    assert tuple(remote.axis_names) == tuple(local.axis_names)
    assert remote.data.shape == local.data.shape and remote.dtype == local.dtype
    np.testing.assert_array_equal(np.asarray(remote.data[...]), np.asarray(local.data[...]))


@pytest.mark.parametrize("name", ["raw", "gt", "mask"])
def test_s3_array_reads_as_the_local_one(s3_env: str, local_data: Path, name: str) -> None:
    same(open_array("s3://cells/demo.zarr", name), open_array(local_data / "demo.zarr", name))


def test_ome_ngff_over_s3_and_http(s3: str, local_data: Path) -> None:
    local = open_array(local_data / "ome.zarr", "raw")
    assert local.voxel_size == (8, 4, 4) and local.offset == (16, 8, 0)
    same(open_array("s3://cells/ome.zarr", "raw", s3_options(s3)), local)
    same(open_array("s3://cells/ome.zarr", "raw/s0", s3_options(s3)), local)
    with http_server(local_data) as base:
        same(open_array(f"{base}/ome.zarr", "raw"), local)


def test_http_array_reads_lazily_and_names_missing_arrays(local_data: Path) -> None:
    with http_server(local_data) as base:
        remote = open_array(f"{base}/demo.zarr", "raw")
        same(remote, open_array(local_data / "demo.zarr", "raw"))
        crop = np.asarray(remote.data[3:9, 10:12, 5])
        assert crop.shape == (6, 2)
        with pytest.raises(ValueError, match="there is nothing at that path") as info:
            open_array(f"{base}/demo.zarr", "labels")
        assert "\n" not in str(info.value)


def test_storage_options_give_endpoint_and_keys_per_dataset(s3: str, local_data: Path) -> None:
    config = structure_config(
        {
            "__type__": "ZarrDatasetConfig",
            "name": "remote",
            "container": "s3://cells/demo.zarr",
            "storage_options": s3_options(s3),
        }
    )
    assert isinstance(config, ZarrDatasetConfig)
    dataset = config.build()
    assert dataset.gt is not None
    same(dataset.gt, open_array(local_data / "demo.zarr", "gt"))


def test_dacapo_zarr_array_config_keeps_the_url(s3: str, local_data: Path) -> None:
    document = {
        "__type__": "ZarrArrayConfig",
        "name": "raw",
        "file_name": "s3://cells/demo.zarr",
        "dataset": "raw",
        "storage_options": s3_options(s3),
    }
    config = structure_config(document)
    assert isinstance(config, ZarrArrayConfig) and config.file_name == "s3://cells/demo.zarr"
    again = unstructure_config(config)
    assert again["file_name"] == "s3://cells/demo.zarr"
    assert structure_config(again) == config
    same(config.build(), open_array(local_data / "demo.zarr", "raw"))


def test_dacapo_files_without_storage_options_load_and_round_trip(local_data: Path) -> None:
    document = {"__type__": "ZarrArrayConfig", "name": "raw", "dataset": "raw"}
    document["file_name"] = str(local_data / "demo.zarr")
    config = structure_config(document)
    assert isinstance(config, ZarrArrayConfig) and config.storage_options is None
    assert structure_config(yaml.safe_load(yaml.safe_dump(unstructure_config(config)))) == config


def _crop_sum(data: Any) -> int:
    return int(np.asarray(data[5:30, 0:40, 7:21], dtype=np.int64).sum())


def test_forked_workers_read_with_their_own_connection_and_cache(
    s3_env: str, local_data: Path
) -> None:
    remote = open_array("s3://cells/demo.zarr", "raw").data
    expected = _crop_sum(open_array(local_data / "demo.zarr", "raw").data)
    assert _crop_sum(remote) == expected  # the parent's event loop and session now exist
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(_crop_sum, [remote] * 4) == [expected] * 4
    assert _crop_sum(remote) == expected


def test_cached_chunks_are_read_without_the_server(local_data: Path) -> None:
    with moto_server() as endpoint:
        upload(endpoint, local_data / "demo.zarr", "cache", "demo.zarr")
        remote = open_array("s3://cache/demo.zarr", "raw", s3_options(endpoint))
        first = np.asarray(remote.data[0:8, 0:8, 0:8])
    # the server is gone: the crop's chunk comes from this process's cache
    np.testing.assert_array_equal(np.asarray(remote.data[0:8, 0:8, 0:8]), first)


@pytest.mark.parametrize(
    ("url", "dataset", "expected"),
    [
        ("s3://no-such-bucket/demo.zarr", "raw", "the bucket 'no-such-bucket' does not exist"),
        ("s3://cells/missing.zarr", "raw", "the container does not exist; check the URL"),
        ("s3://cells/demo.zarr", "labels", "there is nothing at that path (it holds gt, mask"),
    ],
)
def test_missing_bucket_container_or_array_is_one_line(
    s3_env: str, url: str, dataset: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=r"^cannot") as info:
        open_array(url, dataset)
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.fixture(scope="module")
def locked_s3(local_data: Path) -> Iterator[dict[str, str]]:
    """A moto server that checks credentials, with the demo data in bucket 'locked'."""
    with moto_server(INITIAL_NO_AUTH_ACTION_COUNT="3") as endpoint:
        allowed = authorized_user(endpoint)
        upload(endpoint, local_data / "demo.zarr", "locked", "demo.zarr", allowed)
        yield allowed


@pytest.mark.parametrize(
    "wrong", [{"secret": "not-the-secret"}, {"key": "AKIAUNKNOWNKEY000000", "secret": "x"}]
)
def test_wrong_credentials_are_denied_in_one_line(
    locked_s3: dict[str, str], local_data: Path, wrong: dict[str, str]
) -> None:
    same(
        open_array("s3://locked/demo.zarr", "gt", locked_s3),
        open_array(local_data / "demo.zarr", "gt"),
    )
    with pytest.raises(ValueError, match="access denied") as info:
        open_array("s3://locked/demo.zarr", "gt", {**locked_s3, **wrong})
    assert "AWS_ACCESS_KEY_ID" in str(info.value) and "\n" not in str(info.value)


def test_cli_wrong_credentials_exit_2(locked_s3: dict[str, str], tmp_path: Path) -> None:
    run = _run_file(tmp_path, "s3://locked/demo.zarr")
    environment = s3_environment(locked_s3["endpoint_url"])
    environment["AWS_ACCESS_KEY_ID"] = locked_s3["key"]
    message = _one_line_error(_cli("validate", "--inputs", str(run), cwd=tmp_path, **environment))
    assert "access denied" in message


def test_http_server_not_listening_is_one_line() -> None:
    with pytest.raises(ValueError, match="cannot connect to the server") as info:
        open_array(f"http://127.0.0.1:{free_port()}/demo.zarr", "raw")
    assert "\n" not in str(info.value)


def test_remote_containers_are_read_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="remote containers are read-only"):
        write_array("s3://cells/out.zarr", "raw", np.zeros((2, 2, 2)), voxel_size=[1, 1, 1])
    with pytest.raises(ValueError, match="remote containers are read-only"):
        ZarrContainer("s3://cells/snapshots.zarr")


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dacapo_trainers", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_LIMIT_S,
        cwd=cwd,
        env={**os.environ, **env},
    )


def _run_file(tmp_path: Path, container: str, **more: Any) -> Path:
    data = {
        "name": "remote",
        "trainer_config": dummy_trainer(),
        "architecture_config": {
            "__type__": "UNetConfig",
            "name": "unet",
            "input_shape": [20, 20, 20],
            "num_fmaps": 2,
            "downsample_factors": [[2, 2, 2]],
        },
        "task_config": {"__type__": "AffinitiesTaskConfig", "name": "affs"},
        "datasets": [{"__type__": "ZarrDatasetConfig", "name": "demo", "container": container}],
        "num_iterations": 2,
        "device": "cpu",
        **more,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), result.stderr
    return result.stderr


@pytest.mark.parametrize("command", [["validate", "--inputs"], ["train", "--quiet"]])
def test_cli_unreachable_endpoint_is_one_line_and_bounded(
    tmp_path: Path, command: list[str]
) -> None:
    run = _run_file(tmp_path, "s3://cells/demo.zarr")
    nobody = f"http://127.0.0.1:{free_port()}"
    result = _cli(*command, str(run), cwd=tmp_path, **s3_environment(nobody))
    message = _one_line_error(result)
    assert "cannot connect to the server" in message and "s3://cells/demo.zarr" in message
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", [["validate", "--inputs"], ["train", "--quiet"]])
def test_cli_missing_bucket_is_one_line(s3: str, tmp_path: Path, command: list[str]) -> None:
    run = _run_file(tmp_path, "s3://nowhere/demo.zarr")
    message = _one_line_error(_cli(*command, str(run), cwd=tmp_path, **s3_environment(s3)))
    assert "the bucket 'nowhere' does not exist" in message


def test_cli_refuses_a_url_as_output(tmp_path: Path, local_data: Path) -> None:
    run = _run_file(tmp_path, str(local_data / "demo.zarr"), output="s3://cells/runs/remote")
    message = _one_line_error(_cli("validate", str(run), cwd=tmp_path))
    assert "remote containers are read-only" in message and "give a local path" in message


def test_missing_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['s3fs'] = None; "
    code = hide + "from dacapo_trainers import open_array; open_array('s3://cells/d.zarr', 'raw')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=COMMAND_LIMIT_S
    )
    assert result.returncode != 0
    assert "pip install 'dacapo-trainers[remote]'" in result.stderr.splitlines()[-1]
