"""Zarr I/O with geometry metadata; run under zarr 2.18 and zarr 3 (nox -s tests-zarr3)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from dacapo_trainers import ZarrContainer, open_array, write_array
from dacapo_trainers.testing import _checks


def test_round_trip_with_geometry(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    container = ZarrContainer(tmp_path / "snapshots.zarr", "run")
    write_array(container, "7/prediction", data, voxel_size=(8, 4, 4), offset=(80, 40, 40))
    array = open_array(tmp_path / "snapshots.zarr", "run/7/prediction")
    assert array.voxel_size == (8, 4, 4)
    assert array.offset == (80, 40, 40)
    assert array.axis_names == ("c^", "z", "y", "x")
    np.testing.assert_array_equal(array.to_numpy(), data)


def test_overwrite_and_2d(tmp_path: Path) -> None:
    path = tmp_path / "c.zarr"
    write_array(path, "raw", np.zeros((4, 4), np.uint8), voxel_size=(2, 2))
    write_array(path, "raw", np.ones((6, 6), np.uint8), voxel_size=(3, 3), offset=(3, 6))
    array = open_array(path, "raw")
    assert array.data.shape == (6, 6)
    assert array.axis_names == ("y", "x")
    assert array.offset == (3, 6)
    assert int(array.to_numpy().sum()) == 36


def test_metadata_readable_by_neuroglancer_and_funlib_conventions(tmp_path: Path) -> None:
    import zarr

    write_array(tmp_path / "c.zarr", "gt", np.zeros((2, 2, 2), np.uint64), voxel_size=(4, 4, 4))
    attributes = dict(zarr.open_group(str(tmp_path / "c.zarr"), mode="r")["gt"].attrs)
    assert attributes["resolution"] == [4, 4, 4]
    assert attributes["voxel_size"] == [4, 4, 4]
    assert attributes["units"] == ["nm", "nm", "nm"]


def test_zarr_pools_are_not_leftovers_but_a_trainers_thread_still_is(tmp_path: Path) -> None:
    """zarr 3 starts process-wide I/O threads on first use (zarr_io, asyncio_N): not leaks."""
    import zarr

    before = _checks.thread_idents()
    write_array(
        tmp_path / "c.zarr",
        "a",
        np.arange(4096, dtype=np.uint16).reshape(16, 16, 16),
        voxel_size=(1, 1, 1),
        chunks=(4, 4, 4),
    )
    group = zarr.open_group(str(tmp_path / "c.zarr"), mode="r")
    assert int(np.asarray(group["a"][...]).sum()) == sum(range(4096))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="asyncio_99", daemon=True)  # look-alike
    thread.start()
    try:
        assert [t.name for t in _checks.leftover_threads(before)] == ["asyncio_99"]
    finally:
        stop.set()
        thread.join()
    if zarr.__version__.startswith("3"):
        assert _checks.library_threads(), "zarr 3 read without its I/O threads?"
