"""One rule names unnamed axes: ``c^`` per channel axis, then the last of ``z, y, x`` (``d0 ...``
beyond three spatial axes); every writer and reader of the core follows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dacapo_trainers import (
    BatchGeometry,
    InMemoryArray,
    ZarrContainer,
    default_axis_names,
    open_array,
    write_array,
)

#: (ndim, spatial_dims) with 0 <= spatial_dims <= ndim, up to 8 axes.
SHAPES = st.integers(0, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@given(SHAPES)
def test_the_rule(shape: tuple[int, int]) -> None:
    ndim, spatial = shape
    names = default_axis_names(ndim, spatial)
    assert len(names) == ndim
    assert names[: ndim - spatial] == ("c^",) * (ndim - spatial)
    spatial_names = names[ndim - spatial :]
    if spatial <= 3:
        assert spatial_names == ("z", "y", "x")[3 - spatial :]
    else:
        assert spatial_names == tuple(f"d{i}" for i in range(spatial))
    assert len(set(spatial_names)) == spatial  # no two spatial axes share a name
    assert not any(name.endswith("^") for name in spatial_names)


@given(st.integers(0, 8))
def test_every_axis_is_spatial_by_default(ndim: int) -> None:
    assert default_axis_names(ndim) == default_axis_names(ndim, ndim)


@pytest.mark.parametrize(("ndim", "spatial"), [(-1, 0), (2, 3), (3, -1)])
def test_impossible_counts_are_refused(ndim: int, spatial: int) -> None:
    with pytest.raises(ValueError, match="0 <= spatial_dims <= ndim"):
        default_axis_names(ndim, spatial)


@settings(max_examples=30, deadline=None)
@given(SHAPES.filter(lambda s: s[1] >= 1 and s[0] <= 6))
def test_in_memory_arrays_follow_it(shape: tuple[int, int]) -> None:
    ndim, spatial = shape
    array = InMemoryArray(np.zeros((1,) * ndim), voxel_size=(1,) * spatial, offset=(0,) * spatial)
    assert array.axis_names == default_axis_names(ndim, spatial)


@settings(max_examples=10, deadline=None)
@given(SHAPES.filter(lambda s: s[1] >= 1 and s[0] <= 6))
def test_written_and_read_arrays_follow_it(
    tmp_path_factory: pytest.TempPathFactory, shape: tuple[int, int]
) -> None:
    ndim, spatial = shape
    container = tmp_path_factory.mktemp("axes") / "c.zarr"
    write_array(container, "a", np.zeros((2,) * ndim, np.uint8), voxel_size=(4,) * spatial)
    assert open_array(container, "a").axis_names == default_axis_names(ndim, spatial)


@pytest.mark.parametrize(("ndim", "spatial"), [(3, 3), (4, 3), (5, 4), (2, 2)])
def test_arrays_without_axis_names_are_read_with_it(
    tmp_path: Path, ndim: int, spatial: int
) -> None:
    import zarr

    group = zarr.open_group(str(tmp_path / "c.zarr"), mode="a")
    shape = (2,) * ndim
    if hasattr(group, "create_array"):  # zarr 3
        array = group.create_array("a", shape=shape, dtype="uint8")
    else:
        array = group.create_dataset("a", shape=shape, dtype="uint8")
    array.attrs["voxel_size"] = [4] * spatial  # no axis_names attribute
    assert open_array(tmp_path / "c.zarr", "a").axis_names == default_axis_names(ndim, spatial)


@given(st.integers(1, 6))
def test_batch_geometries_follow_it(dims: int) -> None:
    geometry = BatchGeometry((1,) * dims, (1,) * dims, [(0,) * dims], [(0,) * dims])
    assert geometry.axis_names == default_axis_names(dims)


def test_snapshots_of_four_spatial_dimensions_name_their_channels(tmp_path: Path) -> None:
    from dacapo_trainers._batches._snapshots import write_snapshot

    geometry = BatchGeometry((1,) * 4, (1,) * 4, [(0,) * 4], [(0,) * 4])
    container = ZarrContainer(tmp_path / "snapshots.zarr")
    arrays = {"target": np.zeros((1, 2, 3, 3, 3, 3), np.float32)}  # batch, 2 channels, 4D
    (path,) = write_snapshot(container, 0, arrays, geometry)
    assert open_array(container.container, path).axis_names == default_axis_names(5, 4)
