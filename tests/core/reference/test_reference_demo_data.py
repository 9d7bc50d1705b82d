"""make_demo_data: deterministic touching cells whose boundaries are visible in raw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from dacapo_trainers import open_array
from dacapo_trainers.reference import make_demo_data


def _read(path: Path) -> dict[str, np.ndarray]:
    return {name: open_array(path, name).to_numpy() for name in ("raw", "gt", "mask")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_data(
        tmp_path_factory.mktemp("demo") / "demo.zarr", shape=(40, 48, 48), voxel_size=(16, 8, 8)
    )


def test_arrays_dtypes_and_geometry(demo: Path) -> None:
    for name, dtype in (("raw", np.uint8), ("gt", np.uint64), ("mask", np.uint8)):
        array = open_array(demo, name)
        assert array.dtype == dtype
        assert array.data.shape == (40, 48, 48)
        assert tuple(array.voxel_size) == (16, 8, 8)
        assert tuple(array.offset) == (0, 0, 0)
    assert np.all(open_array(demo, "mask").to_numpy() == 1)


def test_same_seed_same_data_other_seed_other_data(demo: Path, tmp_path: Path) -> None:
    again = make_demo_data(tmp_path / "again.zarr", shape=(40, 48, 48), voxel_size=(16, 8, 8))
    other = make_demo_data(
        tmp_path / "other.zarr", shape=(40, 48, 48), voxel_size=(16, 8, 8), seed=1
    )
    first, second, third = _read(demo), _read(again), _read(other)
    for name in ("raw", "gt"):
        np.testing.assert_array_equal(first[name], second[name])
        assert not np.array_equal(first[name], third[name])


def test_labels_are_consecutive_connected_instances_on_background(demo: Path) -> None:
    gt = open_array(demo, "gt").to_numpy()
    values = np.unique(gt)
    assert values[0] == 0
    np.testing.assert_array_equal(values, np.arange(len(values)))
    assert len(values) > 10
    assert 0.2 < np.mean(gt > 0) < 0.9
    for label, box in enumerate(ndimage.find_objects(gt.astype(np.int64)), start=1):
        assert box is not None
        _, count = ndimage.label(gt[box] == label)
        assert count == 1, f"label {label} has {count} components"


def test_touching_instances_are_separated_by_dark_raw(demo: Path) -> None:
    arrays = _read(demo)
    gt, raw = arrays["gt"], arrays["raw"].astype(float)
    boundary = np.zeros(gt.shape, bool)
    touching = np.zeros(gt.shape, bool)
    for axis in range(3):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        differs = gt[tuple(a)] != gt[tuple(b)]
        between_cells = differs & (gt[tuple(a)] > 0) & (gt[tuple(b)] > 0)
        boundary[tuple(a)] |= differs
        boundary[tuple(b)] |= differs
        touching[tuple(a)] |= between_cells
        touching[tuple(b)] |= between_cells
    assert touching.sum() > 100  # many cells touch
    interior = (gt > 0) & ~ndimage.binary_dilation(boundary, iterations=2)
    background = (gt == 0) & ~ndimage.binary_dilation(boundary, iterations=2)
    assert raw[interior].mean() > raw[background].mean() + 50
    assert raw[interior].mean() > raw[touching].mean() + 60


def test_2d_variant(tmp_path: Path) -> None:
    path = make_demo_data(tmp_path / "flat.zarr", ndim=2, num_blobs=12, seed=3)
    gt = open_array(path, "gt")
    assert gt.data.shape == (96, 96)
    assert tuple(gt.voxel_size) == (8, 8)
    assert tuple(gt.axis_names) == ("y", "x")
    assert 1 < gt.to_numpy().max() <= 12
    small = make_demo_data(tmp_path / "small.zarr", shape=(32, 24), voxel_size=(4, 4))
    assert open_array(small, "raw").data.shape == (32, 24)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ndim": 4}, "ndim must be 2 or 3"),
        ({"shape": (8, 8), "ndim": 3}, "must have ndim=3 entries"),
        ({"shape": (8, 8, 8), "voxel_size": (1, 1)}, "must have ndim=3 entries"),
        ({"shape": (8, 0, 8)}, "must be positive"),
        ({"shape": (8, 8, 8), "num_blobs": 0}, "num_blobs must be at least 1"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_demo_data(tmp_path / "bad.zarr", **kwargs)  # type: ignore[arg-type]
