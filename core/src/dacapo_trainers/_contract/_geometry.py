"""World geometry every trainer needs: array extents, the model's output grid, sample points.

Public helpers, so that trainers (first-party or not) agree on what a dataset's region is,
and which sample points are usable (the model's output voxel size is
:func:`~dacapo_trainers.output_voxel_size`, in ``_models``).
"""

from __future__ import annotations

from ._protocols import Array, Dataset


def world_bounds(array: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """World begin and end (end excluded) of ``array``'s spatial region."""
    dims = len(array.voxel_size)
    shape = tuple(int(s) for s in array.data.shape[-dims:])
    begin = tuple(int(o) for o in array.offset)
    end = tuple(b + s * int(v) for b, s, v in zip(begin, shape, array.voxel_size, strict=True))
    return begin, end


def sample_point_problem(dataset: Dataset) -> str | None:
    """Why ``dataset``'s sample points are unusable (one sentence), or None.

    Sample points are world coordinates that output crops are centred on; each must have one
    coordinate per spatial axis and lie inside the gt (a point outside cannot be the centre
    of a crop a loss is computed on).
    """
    gt = dataset.gt
    if gt is None or not dataset.sample_points:
        return None
    begin, end = world_bounds(gt)
    points = [tuple(float(c) for c in point) for point in dataset.sample_points]
    wrong = [point for point in points if len(point) != len(begin)]
    if wrong:
        return (
            f"dataset {dataset.name!r}: sample points must each have {len(begin)} world "
            f"coordinates, got {list(wrong[0])}"
        )
    outside = [
        point
        for point in points
        if any(not b <= p < e for p, b, e in zip(point, begin, end, strict=True))
    ]
    if not outside:
        return None
    return (
        f"dataset {dataset.name!r}: sample point {outside[0]} lies outside its gt, which covers "
        f"{begin} to {end} (world units, end excluded; {len(outside)} of its {len(points)} "
        "points are outside); sample points are world coordinates inside the gt"
    )
