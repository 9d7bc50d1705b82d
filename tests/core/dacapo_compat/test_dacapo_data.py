"""The data DaCapo reads: prepare_ds containers, OME-NGFF, DaCapo's array configs, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from dacapo_written import prepare_array

from dacapo_trainers import Array, open_array
from dacapo_trainers.reference import (
    BinarizeArrayConfig,
    CropArrayConfig,
    IntensitiesArrayConfig,
    RawGTDatasetConfig,
    ZarrArrayConfig,
    ZarrDatasetConfig,
)

ZARR_3 = int(zarr.__version__.split(".")[0]) >= 3
RAW = (np.arange(6 * 8 * 10) % 251).astype(np.uint8).reshape(6, 8, 10)
LABELS = np.zeros((6, 8, 10), dtype=np.uint64)
LABELS[:, :4] = 1
LABELS[:, 4:, :5] = 2
LABELS[:, 4:, 5:] = 3


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Arrays written as DaCapo writes them: prepare_ds per array, no root group."""
    path = tmp_path_factory.mktemp("dacapo") / "data.zarr"
    prepare_array(path, "volumes/raw", RAW, voxel_size=(4, 2, 2), offset=(8, 4, 4))
    prepare_array(path, "volumes/labels", LABELS, voxel_size=(4, 2, 2), offset=(8, 4, 4))
    two = np.stack([RAW, RAW // 2])
    prepare_array(path, "volumes/two", two, voxel_size=(4, 2, 2), offset=(8, 4, 4))
    return path


def zarr_config(container: Path, dataset: str) -> ZarrArrayConfig:
    return ZarrArrayConfig(name=dataset, file_name=container, dataset=dataset)


def test_prepare_ds_container_has_no_root_group_and_opens(container: Path) -> None:
    assert not (container / ".zgroup").exists() and not (container / "zarr.json").exists()
    array = zarr_config(container, "volumes/raw").build()
    assert isinstance(array, Array)
    assert tuple(array.voxel_size) == (4, 2, 2) and tuple(array.offset) == (8, 4, 4)
    assert tuple(array.axis_names) == ("z", "y", "x")
    np.testing.assert_array_equal(np.asarray(array.data[1:3, :, 2:5]), RAW[1:3, :, 2:5])
    channels = zarr_config(container, "volumes/two").build()
    assert tuple(channels.axis_names) == ("c^", "z", "y", "x")
    assert tuple(channels.voxel_size) == (4, 2, 2)


def test_zarr_dataset_config_opens_a_prepare_ds_container(container: Path) -> None:
    dataset = ZarrDatasetConfig(
        name="d", container=str(container), raw="volumes/raw", gt="volumes/labels"
    ).build()
    assert dataset.gt is not None
    assert dataset.raw.dtype == np.uint8  # as stored: the trainers cast to float32
    np.testing.assert_array_equal(np.asarray(dataset.gt.data[...]), LABELS)


def test_intensity_range_maps_raw_linearly(container: Path) -> None:
    dataset = ZarrDatasetConfig(
        name="d",
        container=str(container),
        raw="volumes/raw",
        gt=None,
        intensity_range=[0, 255],
        normalized_range=[-1, 1],
    ).build()
    assert isinstance(dataset.raw, Array)
    assert dataset.raw.dtype == np.float32
    got = np.asarray(dataset.raw.data[2:4, 1:3, :])
    expected = (RAW[2:4, 1:3, :].astype(np.float64) / 255 * 2 - 1).astype(np.float32)
    np.testing.assert_array_equal(got, expected)
    assert tuple(dataset.raw.offset) == (8, 4, 4)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"intensity_range": [255, 0]}, "$.intensity_range: must be [min, max] with min < max"),
        ({"normalized_range": [1]}, "$.normalized_range: must be [low, high] with low < high"),
    ],
)
def test_bad_intensity_ranges_are_refused(fields: dict[str, Any], message: str) -> None:
    from dacapo_trainers import ConfigError, structure_config

    data = {"__type__": "ZarrDatasetConfig", "name": "d", "container": "c.zarr", **fields}
    with pytest.raises(ConfigError) as info:
        structure_config(data)
    assert str(info.value.issues[0]).startswith(message)


class CountingSource:
    """An array-like that records how many voxels each read returned."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.read: list[int] = []

    def __getitem__(self, key: Any) -> np.ndarray:
        block = self.data[key]
        self.read.append(int(np.asarray(block).size))
        return block


class InMemoryConfig(ZarrArrayConfig):
    """A ZarrArrayConfig whose build returns a counting in-memory array (test double)."""

    source: Any = None

    def build(self) -> Any:
        from dacapo_trainers.reference._lazy import LazyArray

        return LazyArray(
            data=type(self).source, voxel_size=(4, 2, 2), offset=(8, 4, 4), axis_names="zyx"
        )


def test_intensities_as_dacapo_computes_them_and_lazily(container: Path) -> None:
    source = CountingSource(RAW)
    InMemoryConfig.source = source
    config = IntensitiesArrayConfig(
        name="n",
        source_array_config=InMemoryConfig(name="raw", file_name=container, dataset="x"),
        min=10,
        max=200,
    )
    array = config.build()
    block = np.asarray(array.data[0:2, 0:2, 0:2])
    assert source.read == [8]  # only the requested crop was read
    np.testing.assert_array_equal(
        block, ((RAW[0:2, 0:2, 0:2] - 10.0) / (200.0 - 10.0)).astype(np.float32)
    )
    assert array.dtype == np.float32 and tuple(array.voxel_size) == (4, 2, 2)


def test_binarize_gives_a_channel_per_group(container: Path) -> None:
    config = BinarizeArrayConfig(
        name="b",
        source_array_config=zarr_config(container, "volumes/labels"),
        groupings=[("any", []), ("two_or_three", [2, 3]), ("one", [1])],
    )
    array = config.build()
    assert tuple(array.axis_names) == ("c^", "z", "y", "x")
    assert array.data.shape == (3, 6, 8, 10) and array.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(array.data[0]), LABELS != 0)
    np.testing.assert_array_equal(
        np.asarray(array.data[1:, 2:4]), [np.isin(LABELS[2:4], [2, 3]), LABELS[2:4] == 1]
    )
    with pytest.raises(ValueError, match="binarize needs labels without a channel axis"):
        BinarizeArrayConfig(
            name="b2",
            source_array_config=zarr_config(container, "volumes/two"),
            groupings=[("a", [])],
        ).build()


def test_crop_in_world_units(container: Path) -> None:
    source = zarr_config(container, "volumes/two")
    array = CropArrayConfig(
        name="c", source_array_config=source, roi=[[12, 8, 6], [8, 6, 4]]
    ).build()
    assert tuple(array.offset) == (12, 8, 6) and array.data.shape == (2, 2, 3, 2)
    np.testing.assert_array_equal(np.asarray(array.data[...])[0], RAW[1:3, 2:5, 1:3])
    np.testing.assert_array_equal(np.asarray(array.data[1, 1:, 2]), RAW[2:3, 4, 1:3] // 2)
    with pytest.raises(ValueError, match="not on the voxel grid"):
        CropArrayConfig(name="c", source_array_config=source, roi=[[10, 8, 6], [8, 6, 4]]).build()
    with pytest.raises(ValueError, match="not inside the source array"):
        CropArrayConfig(name="c", source_array_config=source, roi=[[0, 8, 6], [8, 6, 4]]).build()


def test_raw_gt_dataset_builds_lazy_arrays(container: Path) -> None:
    dataset = RawGTDatasetConfig(
        name="d",
        raw_config=zarr_config(container, "volumes/raw"),
        gt_config=zarr_config(container, "volumes/labels"),
        sample_points=[[12, 8, 8]],
    ).build()
    assert dataset.weight == 1.0 and dataset.sample_points == ((12.0, 8.0, 8.0),)
    bad = RawGTDatasetConfig(
        name="d", raw_config=zarr_config(container, "volumes/raw"), sample_points=[[1, 2]]
    )
    with pytest.raises(ValueError, match="sample point \\[1, 2\\] has 2 coordinates"):
        bad.build()


# -- OME-NGFF --------------------------------------------------------------------------------


def _multiscales(version: str, unit: str, scales: list[list[float]], shift: list[float]) -> dict:
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": unit} for n in "zyx"
    ]
    datasets = [
        {
            "path": f"s{level}",
            "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, *scale]},
                {"type": "translation", "translation": [0.0, *shift]},
            ],
        }
        for level, scale in enumerate(scales)
    ]
    return {"version": version, "name": "raw", "axes": axes, "datasets": datasets}


def _write_v04(group_path: Path, unit: str, scales: list[list[float]], shift: list[float]) -> None:
    """An OME-NGFF v0.4 image in zarr format 2, written with plain files and zarr."""
    group_path.mkdir(parents=True)
    (group_path / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    attributes = {"multiscales": [_multiscales("0.4", unit, scales, shift)]}
    (group_path / ".zattrs").write_text(json.dumps(attributes))
    for level in range(len(scales)):
        data = np.full((1, 4 >> level, 4 >> level, 4 >> level), level, dtype=np.uint16)
        if ZARR_3:
            array = zarr.open_array(
                str(group_path / f"s{level}"),
                mode="w",
                shape=data.shape,
                dtype=data.dtype,
                zarr_format=2,
            )
        else:
            array = zarr.open_array(
                str(group_path / f"s{level}"), mode="w", shape=data.shape, dtype=data.dtype
            )
        array[...] = data


def test_ome_ngff_v04_group_and_scale(tmp_path: Path) -> None:
    _write_v04(tmp_path / "img.zarr" / "raw", "nanometer", [[8, 4, 4], [16, 8, 8]], [40, 20, 20])
    finest = open_array(tmp_path / "img.zarr", "raw")
    assert tuple(finest.voxel_size) == (8, 4, 4) and tuple(finest.offset) == (40, 20, 20)
    assert tuple(finest.axis_names) == ("c^", "z", "y", "x")
    coarse = open_array(tmp_path / "img.zarr", "raw/s1")
    assert tuple(coarse.voxel_size) == (16, 8, 8) and int(coarse.data[0, 0, 0, 0]) == 1


def test_ome_ngff_micrometres_become_nanometres(tmp_path: Path) -> None:
    _write_v04(tmp_path / "img.zarr", "micrometer", [[0.008, 0.004, 0.004]], [0.04, 0, 0])
    array = open_array(tmp_path / "img.zarr", "")
    assert tuple(array.voxel_size) == (8, 4, 4) and tuple(array.offset) == (40, 0, 0)
    dataset = ZarrDatasetConfig(name="d", container=str(tmp_path / "img.zarr"), raw="", gt="s0")
    assert tuple(dataset.build().raw.voxel_size) == (8, 4, 4)


def test_ome_ngff_non_whole_voxel_sizes_are_refused(tmp_path: Path) -> None:
    _write_v04(tmp_path / "img.zarr", "nanometer", [[0.5, 4, 4]], [0, 0, 0])
    with pytest.raises(ValueError, match="not whole world units"):
        open_array(tmp_path / "img.zarr", "")


@pytest.mark.skipif(not ZARR_3, reason="zarr format 3 (OME-NGFF v0.5) needs zarr>=3")
def test_ome_ngff_v05_in_zarr_format_3(tmp_path: Path) -> None:
    group = zarr.open_group(str(tmp_path / "img.zarr"), mode="w", zarr_format=3)
    multiscales = _multiscales("0.5", "nanometer", [[8, 4, 4]], [0, 4, 4])
    del multiscales["version"]
    group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscales]}
    data = np.arange(64, dtype=np.uint8).reshape(1, 4, 4, 4)
    group.create_array("s0", shape=data.shape, dtype=data.dtype)[...] = data
    for dataset in ("", "s0"):
        array = open_array(tmp_path / "img.zarr", dataset)
        assert tuple(array.voxel_size) == (8, 4, 4) and tuple(array.offset) == (0, 4, 4)
        np.testing.assert_array_equal(np.asarray(array.data[...]), data)


@pytest.mark.skipif(ZARR_3, reason="zarr 3 reads zarr format 3")
def test_zarr_format_3_with_zarr_2_says_what_to_install(tmp_path: Path) -> None:
    node = tmp_path / "img.zarr" / "raw"
    node.mkdir(parents=True)
    (node / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "array", "shape": [2], "attributes": {}})
    )
    with pytest.raises(ValueError, match=r"zarr format 3.*install zarr>=3"):
        open_array(tmp_path / "img.zarr", "raw")


# -- errors: one line naming the dataset, the path and what to do ----------------------------


def _one_line_error(config: Any) -> str:
    with pytest.raises(ValueError) as info:
        config.build()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_open_errors_are_one_clear_line(container: Path, tmp_path: Path) -> None:
    missing = _one_line_error(zarr_config(tmp_path / "nowhere.zarr", "raw"))
    assert missing.startswith("ZarrArrayConfig 'raw': cannot open array 'raw' in zarr container")
    assert "the container does not exist; check the path" in missing
    no_array = _one_line_error(zarr_config(container, "volumes/nothing"))
    assert "there is nothing at that path (it holds labels, raw, two)" in no_array
    group = _one_line_error(zarr_config(container, "volumes"))
    assert "it is a group, not an array (it holds labels, raw, two)" in group
    assert "name one of its arrays" in group
    (tmp_path / "plain").mkdir()
    plain = _one_line_error(zarr_config(tmp_path, "plain"))
    assert "it is not a zarr array or group" in plain
    dataset = ZarrDatasetConfig(name="cells", container=str(container), raw="volumes")
    assert _one_line_error(dataset).startswith("ZarrDatasetConfig 'cells': cannot open array")


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"voxel_size": "eight"}, "its voxel_size attribute is 'eight', not a list of positive"),
        ({"voxel_size": [4, 0, 4]}, "not a list of positive whole numbers"),
        ({"resolution": [4.5, 4, 4]}, "its resolution attribute is [4.5, 4, 4]"),
        ({"voxel_size": [4, 4, 4], "offset": [1, 2]}, "its offset attribute is [1, 2], not 3"),
        ({"voxel_size": [1, 1, 1, 1, 1]}, "has 5 entries but the array has only 3 axes"),
    ],
)
def test_garbage_geometry_attributes_are_refused(
    tmp_path: Path, attributes: dict[str, Any], message: str
) -> None:
    prepare_array(tmp_path / "c.zarr", "raw", RAW, voxel_size=(4, 2, 2))
    node = tmp_path / "c.zarr" / "raw"
    if (node / "zarr.json").exists():  # zarr format 3: attributes live in zarr.json
        document = json.loads((node / "zarr.json").read_text())
        document["attributes"] = attributes
        (node / "zarr.json").write_text(json.dumps(document))
    else:
        (node / ".zattrs").write_text(json.dumps(attributes))
    error = _one_line_error(zarr_config(tmp_path / "c.zarr", "raw"))
    assert message in error and "fix the attribute" in error
