"""Snapshot previews: both snapshot layouts, the figure's panels, scaling, the observer."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dacapo_trainers import ZarrContainer, hookspecs, write_array
from dacapo_trainers._outputs._previews import (
    SnapshotPreviews,
    label_colours,
    preview_figure,
    preview_path,
    value_range,
    write_preview,
)
from dacapo_trainers._outputs._snapshot_slices import read_snapshot_slices

RNG = np.random.default_rng(0)
RAW = RNG.integers(0, 255, size=(2, 20, 20, 20), dtype=np.uint8)  # batch of 2, 20**3 context
GT = RNG.integers(0, 5, size=(2, 12, 12, 12), dtype=np.uint64)
TARGET = RNG.random((2, 3, 12, 12, 12), dtype=np.float32)
PREDICTION = RNG.random((2, 3, 12, 12, 12), dtype=np.float32) * 0.5
WEIGHT = RNG.random((2, 3, 12, 12, 12), dtype=np.float32) * 4 + 1
MASK = (GT > 0).astype(np.uint8)
VOXEL = (4, 4, 4)
RAW_OFFSET, OUTPUT_OFFSET = (0, 0, 0), (16, 16, 16)  # the output is raw's centre 12**3


def write_batched_snapshot(container: ZarrContainer, iteration: int) -> None:
    """Today's layout: ``{iteration}/{name}``, the whole batch on a leading ``b^`` axis."""
    for name, data in (
        ("raw", RAW),
        ("gt", GT),
        ("target", TARGET),
        ("prediction", PREDICTION),
        ("weight", WEIGHT),
        ("mask", MASK),
    ):
        axis_names = ["b^"] + ["c^"] * (data.ndim - 4) + ["z", "y", "x"]
        offset = RAW_OFFSET if name == "raw" else OUTPUT_OFFSET
        write_array(
            container, f"{iteration}/{name}", data, voxel_size=VOXEL, offset=offset,
            axis_names=axis_names,
        )  # fmt: skip


def write_dacapo_snapshot(container: ZarrContainer, iteration: int) -> None:
    """DaCapo's layout: ``{iteration}/volumes/{name}``, sample 0, no batch axis."""
    arrays = {
        "raw": RAW[0],
        "gt": GT[0],
        "target": TARGET[0],
        "prediction": PREDICTION[0],
        "weight": WEIGHT[0],
        "mask": MASK[0],
        "gradients": PREDICTION[0] - TARGET[0],
    }
    for name, data in arrays.items():
        offset = RAW_OFFSET if name == "raw" else OUTPUT_OFFSET
        write_array(container, f"{iteration}/volumes/{name}", data, voxel_size=VOXEL, offset=offset)


LAYOUTS = {"batched": write_batched_snapshot, "dacapo": write_dacapo_snapshot}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_both_layouts_give_sample_0_central_planes_in_row_order(
    layout: str, tmp_path: Path
) -> None:
    container = ZarrContainer(tmp_path / "snapshots.zarr", "run")
    LAYOUTS[layout](container, 7)
    slices = {cut.name: cut for cut in read_snapshot_slices(container, 7)}
    expected = ["raw", "gt", "target", "prediction", "weight", "mask"]
    if layout == "dacapo":
        expected.append("gradients")
    assert list(slices) == expected
    np.testing.assert_array_equal(slices["raw"].planes, RAW[0, 10][None])
    np.testing.assert_array_equal(slices["gt"].planes, GT[0, 6][None])
    np.testing.assert_array_equal(slices["target"].planes, TARGET[0, :, 6])
    assert slices["target"].channels == 3
    assert slices["raw"].cut == (("z", 10),)
    assert slices["prediction"].cut == (("z", 6),)
    assert slices["raw"].spatial_shape == (20, 20, 20)
    assert slices["weight"].offset == OUTPUT_OFFSET
    assert slices["gt"].dtype == np.uint64


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_preview_png_has_a_row_per_array_and_a_panel_per_channel(
    layout: str, tmp_path: Path
) -> None:
    container = ZarrContainer(tmp_path / "snapshots.zarr")
    LAYOUTS[layout](container, 99)
    slices = read_snapshot_slices(container, 99)
    figure = preview_figure(slices, "snapshot of iteration 99")
    grid = figure.axes[0].get_subplotspec().get_gridspec()
    assert (grid.nrows, grid.ncols) == (len(slices), 3)
    titles = [axes.get_title() for axes in figure.axes if axes.get_title()]
    expected = ["raw", "gt"] + [
        f"{name}[{c}]" for name in ("target", "prediction", "weight") for c in range(3)
    ]
    expected += ["mask"] + (["gradients[0]", "gradients[1]", "gradients[2]"] * (layout == "dacapo"))
    assert titles == expected
    assert "each at its own extent and voxel size" in " ".join(figure.get_suptitle().split())
    ids = len(set(GT[0, 6].ravel().tolist()) - {0})
    gt_axes = figure.axes[3]  # after raw's row of three (two of them empty)
    assert (gt_axes.get_title(), gt_axes.get_xlabel()) == ("gt", f"{ids} ids in plane")
    mask_axes = next(axes for axes in figure.axes if axes.get_title() == "mask")
    inside = np.count_nonzero(MASK[0, 6] > 0) / MASK[0, 6].size
    assert mask_axes.get_xlabel() == f"white: in ({inside:.0%}), black: out"
    raw_axes = figure.axes[0]
    assert raw_axes.get_ylabel() == "20 x 20 x 20\nz=10"
    # The prediction's field of view, dashed on raw: 12 voxels wide, starting at voxel 4.
    (box,) = raw_axes.patches
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (3.5, 3.5, 12, 12)

    path = write_preview(container, 99, preview_path(tmp_path / "out", 99))
    assert path == tmp_path / "out" / "snapshots" / "00000099.png"
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    assert width > 400 and height > 150 * len(slices)
    assert path.stat().st_size > 20_000
    assert [p.name for p in path.parent.iterdir()] == ["00000099.png"]  # no temporary left


def test_finer_raw_and_2d_arrays_are_each_cut_at_their_own_centre(tmp_path: Path) -> None:
    container = ZarrContainer(tmp_path / "s.zarr")
    raw = RNG.random((40, 40, 40), dtype=np.float32)  # an upsampling network: raw at 2 nm
    prediction = RNG.random((2, 12, 12, 12), dtype=np.float32)  # at 4 nm, offset 16 nm
    write_array(container, "0/volumes/raw", raw, voxel_size=(2, 2, 2))
    write_array(container, "0/volumes/prediction", prediction, voxel_size=VOXEL, offset=(16,) * 3)
    write_array(container, "0/volumes/overview", raw[0], voxel_size=(2, 2))
    slices = read_snapshot_slices(container, 0)
    assert [cut.name for cut in slices] == ["raw", "prediction", "overview"]
    assert slices[0].cut == (("z", 20),) and slices[1].cut == (("z", 6),)
    assert slices[2].cut == () and slices[2].planes.shape == (1, 40, 40)
    figure = preview_figure(slices, "t")
    (box,) = figure.axes[0].patches  # in raw's 2 nm pixels: from voxel 8, 24 voxels wide
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (7.5, 7.5, 24, 24)
    assert "the prediction's field of view" in " ".join(figure.get_suptitle().split())


def test_many_channels_are_cut_to_six_and_said_so(tmp_path: Path) -> None:
    container = ZarrContainer(tmp_path / "s.zarr")
    write_array(container, "3/prediction", RNG.random((10, 8, 8, 8)), voxel_size=VOXEL)
    (cut,) = read_snapshot_slices(container, 3)
    assert cut.channels == 10 and len(cut.planes) == 6
    titles = [a.get_title() for a in preview_figure([cut], "t").axes]
    assert titles[-1] == "prediction[5] (of 10)"


def test_a_missing_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    container = ZarrContainer(tmp_path / "s.zarr")
    write_array(container, "1/raw", RAW[0], voxel_size=VOXEL)
    with pytest.raises(FileNotFoundError, match=r"no snapshot 2 in .*s.zarr \(no group '2'\)"):
        read_snapshot_slices(container, 2)


def plane(name: str, data: Any) -> Any:
    from dacapo_trainers._outputs._snapshot_slices import ArraySlice

    data = np.asarray(data)
    return ArraySlice(name, data[None], 1, data.shape, (1, 1), (0, 0), (), data.dtype)


def test_intensity_scaling() -> None:
    ramp = np.arange(10_000, dtype=np.float32).reshape(100, 100)
    assert value_range(plane("raw", ramp)) == pytest.approx((99.99, 9899.01))
    assert value_range(plane("weight", ramp + 5)) == (0.0, 10_004.0)
    assert value_range(plane("target", ramp / 10_000 + 0.2)) == pytest.approx((0.2, 1.1999))
    assert value_range(plane("mask", np.zeros((4, 4)))) == (0.0, 1.0)
    low, high = value_range(plane("gradients", ramp - 5000))
    assert low == -high and high == pytest.approx(4950.0)  # |values| 0..5000, each twice
    assert value_range(plane("prediction", np.full((4, 4), 0.3))) == (0.3, 1.3)  # constant
    assert value_range(plane("prediction", np.full((4, 4), np.nan))) == (0.0, 1.0)


@given(st.lists(st.integers(0, 2**63), min_size=1, max_size=50))
def test_label_colours_are_a_fixed_colour_per_id_and_0_is_black(ids: list[int]) -> None:
    labels = np.array(ids, dtype=np.uint64)
    colours = label_colours(labels)
    assert colours.shape == (len(ids), 3)
    for label, colour in zip(ids, colours, strict=True):
        # The same id has the same colour wherever it is (here: alone, in another array).
        np.testing.assert_array_equal(colour, label_colours(np.array([[label]]))[0, 0])
        if label == 0:
            assert np.all(colour == 0)
        else:
            assert colour.max() >= 0.75 and np.all(colour <= 1.0)  # never dark


def test_label_colours_tell_neighbouring_ids_apart() -> None:
    colours = label_colours(np.arange(1, 201))
    distinct = {tuple(np.round(c, 2)) for c in colours}
    assert len(distinct) == 200


def observe(observer: object) -> Any:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(observer)
    return manager.hook


def test_observer_draws_every_snapshot_off_the_loop_and_drains_at_the_end(
    tmp_path: Path,
) -> None:
    import threading

    container = ZarrContainer(tmp_path / "snapshots.zarr")
    previews = SnapshotPreviews(tmp_path)
    hook = observe(previews)
    stale = preview_path(tmp_path, 4)
    stale.parent.mkdir()
    stale.write_bytes(b"an earlier try's preview")
    write_dacapo_snapshot(container, 4)
    write_dacapo_snapshot(container, 9)
    hook.dacapo_trainers_train_snapshot_written(run=None, iteration=4, container=container)
    assert not stale.exists()  # removed at once, on the caller's thread
    hook.dacapo_trainers_train_start(
        run=None, trainer=None, model=None, optimizer=None, start_iteration=0, output=tmp_path
    )
    assert any(t.name == "dacapo-trainers-previews" for t in threading.enumerate())
    hook.dacapo_trainers_train_snapshot_written(run=None, iteration=9, container=container)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hook.dacapo_trainers_train_snapshot_written(run=None, iteration=12, container=container)
        hook.dacapo_trainers_train_end(run=None, iteration=13, error=None)
    names = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert names == ["00000004.png", "00000009.png"]
    assert preview_path(tmp_path, 4).stat().st_size > 20_000  # drawn anew
    assert previews.failures == [
        f"no preview of snapshot 12 in {container.container}: FileNotFoundError: "
        f"no snapshot 12 in {container.container} (no group '12')"
    ]
    assert [str(w.message) for w in caught] == previews.failures
    assert not any(t.name == "dacapo-trainers-previews" for t in threading.enumerate())
