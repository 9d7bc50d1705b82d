"""ZarrDatasetConfig opens real zarr arrays with their geometry; missing ones are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dacapo_trainers import Dataset, write_array
from dacapo_trainers.reference import ZarrDataset, ZarrDatasetConfig


@pytest.fixture
def container(tmp_path: Path) -> Path:
    path = tmp_path / "data.zarr"
    raw = np.arange(4 * 6 * 8, dtype=np.uint8).reshape(4, 6, 8)
    write_array(path, "volumes/raw", raw, voxel_size=(40, 8, 8), offset=(80, 16, 0))
    gt = np.zeros((2, 3, 4), dtype=np.uint64)
    gt[1] = 7
    write_array(path, "volumes/gt", gt, voxel_size=(80, 16, 16), offset=(80, 16, 0))
    write_array(
        path,
        "volumes/mask",
        np.ones((2, 3, 4), np.uint8),
        voxel_size=(80, 16, 16),
        offset=(80, 16, 0),
    )
    return path


def test_build_opens_the_arrays_with_their_geometry(container: Path) -> None:
    config = ZarrDatasetConfig(
        name="cells",
        container=str(container),
        raw="volumes/raw",
        gt="volumes/gt",
        mask="volumes/mask",
        weight=2.5,
        sample_points=[[200, 40, 32]],
    )
    dataset = config.build()
    assert isinstance(dataset, ZarrDataset)
    assert isinstance(dataset, Dataset)
    assert dataset.name == "cells"
    assert dataset.weight == 2.5
    assert dataset.sample_points == ((200.0, 40.0, 32.0),)
    assert tuple(dataset.raw.voxel_size) == (40, 8, 8)
    assert tuple(dataset.raw.offset) == (80, 16, 0)
    assert tuple(dataset.raw.axis_names) == ("z", "y", "x")
    assert dataset.raw.dtype == np.uint8
    np.testing.assert_array_equal(
        np.asarray(dataset.raw.data[...]), np.arange(192, dtype=np.uint8).reshape(4, 6, 8)
    )
    assert dataset.gt is not None and dataset.mask is not None
    assert tuple(dataset.gt.voxel_size) == (80, 16, 16)
    assert dataset.gt.dtype == np.uint64
    assert np.asarray(dataset.gt.data[1]).max() == 7
    assert tuple(dataset.mask.offset) == (80, 16, 0)


def test_defaults_are_raw_and_gt_without_mask(tmp_path: Path) -> None:
    path = tmp_path / "flat.zarr"
    write_array(path, "raw", np.zeros((5, 6), np.float32), voxel_size=(3, 4))
    write_array(path, "gt", np.zeros((5, 6), np.uint32), voxel_size=(3, 4))
    dataset = ZarrDatasetConfig(name="flat", container=str(path)).build()
    assert dataset.gt is not None
    assert tuple(dataset.gt.voxel_size) == (3, 4)
    assert dataset.mask is None
    assert dataset.weight == 1.0
    assert dataset.sample_points is None
    assert ZarrDatasetConfig(name="flat", container=str(path), gt=None).build().gt is None


def test_missing_container_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.zarr"
    config = ZarrDatasetConfig(name="cells", container=str(missing))
    with pytest.raises(ValueError, match="ZarrDatasetConfig 'cells': zarr container") as info:
        config.build()
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)


def test_missing_array_is_named_with_its_container(container: Path) -> None:
    config = ZarrDatasetConfig(name="cells", container=str(container), raw="volumes/raw")
    with pytest.raises(ValueError, match="cannot open array 'gt' in zarr container") as info:
        config.build()
    assert str(container) in str(info.value)
    assert "there is nothing at that path" in str(info.value)


def test_directory_that_is_not_a_zarr_container(tmp_path: Path) -> None:
    config = ZarrDatasetConfig(name="cells", container=str(tmp_path))
    with pytest.raises(ValueError, match="cannot open array 'raw' in zarr container"):
        config.build()


def test_sample_points_must_match_the_dimensions(container: Path) -> None:
    config = ZarrDatasetConfig(
        name="cells",
        container=str(container),
        raw="volumes/raw",
        gt=None,
        sample_points=[[1.0, 2.0]],
    )
    with pytest.raises(ValueError, match=r"sample point \[1.0, 2.0\] has 2 coordinates"):
        config.build()


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="weight must not be negative"):
        ZarrDatasetConfig(name="cells", container="x.zarr", weight=-1.0)
