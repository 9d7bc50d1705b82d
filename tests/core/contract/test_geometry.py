"""The public geometry helpers trainers share: extents, the model's output grid, sample points."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dacapo_trainers import InMemoryArray, output_voxel_size, sample_point_problem, world_bounds


@attrs.define
class Points:
    name: str
    gt: InMemoryArray | None
    sample_points: list[list[float]] | None
    raw: object = None
    mask: object = None
    weight: float = 1.0


@given(
    st.lists(st.integers(1, 9), min_size=3, max_size=3),
    st.lists(st.integers(1, 8), min_size=3, max_size=3),
    st.lists(st.integers(-50, 50), min_size=3, max_size=3),
)
def test_world_bounds_span_the_voxels(
    shape: list[int], voxel: list[int], offset: list[int]
) -> None:
    array = InMemoryArray(np.zeros((2, *shape)), voxel_size=voxel, offset=offset)  # a channel
    begin, end = world_bounds(array)
    assert begin == tuple(offset)
    assert end == tuple(o + s * v for o, s, v in zip(offset, shape, voxel, strict=True))


class Upsampling:
    """A model that predicts at half the raw voxel size (DaCapo's ``Model.scale``).

    Written for any sequence: ``scale`` gets a funlib ``Coordinate`` only where funlib is
    installed (this suite also runs without it).
    """

    def scale(self, voxel_size: Sequence[int]) -> tuple[int, ...]:
        return tuple(int(v) // 2 for v in voxel_size)


def test_output_voxel_size_follows_the_models_scale() -> None:
    assert output_voxel_size(object(), (8, 4, 4)) == (8, 4, 4)  # no scale: raw's grid
    assert output_voxel_size(Upsampling(), (8, 4, 4)) == (4, 2, 2)


def test_sample_points_outside_the_gt_are_named() -> None:
    gt = InMemoryArray(np.zeros((10, 10, 10)), voxel_size=(4, 4, 4), offset=(40, 0, 0))
    inside = Points("d", gt, [[40.0, 0.0, 0.0], [79.0, 39.0, 39.0]])
    assert sample_point_problem(inside) is None
    outside = Points("d", gt, [[40.0, 0.0, 0.0], [80.0, 0.0, 0.0]])
    problem = sample_point_problem(outside)
    assert problem is not None
    assert "dataset 'd': sample point (80.0, 0.0, 0.0) lies outside its gt" in problem
    assert "(40, 0, 0) to (80, 40, 40)" in problem
    short = Points("d", gt, [[1.0, 2.0]])
    assert "must each have 3 world coordinates" in str(sample_point_problem(short))
    assert sample_point_problem(Points("d", None, [[1e9, 0.0, 0.0]])) is None  # no gt: moot
