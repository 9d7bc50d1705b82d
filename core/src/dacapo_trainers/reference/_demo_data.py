"""``make_demo_data``: a small synthetic volume of touching cells to train the references on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dacapo_trainers import write_array

# Typical cell diameter, in voxels.
_CELL_SPACING = 16
_BACKGROUND, _INTERIOR, _BOUNDARY = 90.0, 190.0, 40.0
_BLUR_SIGMA = 1.0
_NOISE_STD = 12.0


def make_demo_data(
    path: str | Path,
    *,
    shape: Sequence[int] | None = None,
    voxel_size: Sequence[int] | None = None,
    num_blobs: int | None = None,
    seed: int = 0,
    ndim: int | None = None,
) -> Path:
    """Write a synthetic volume of touching cells into the zarr container ``path``.

    Three arrays are written with :func:`dacapo_trainers.write_array` (replacing existing
    ones of the same name):

    * ``gt`` (uint64): instance labels ``1..n`` of convex blobs on background 0. Each blob is
      the part of the Voronoi cell of a random seed point that lies within a random radius of
      it, so neighbouring blobs often touch.
    * ``raw`` (uint8): bright cell interiors, a dark one-voxel boundary on the inside of every
      blob (so two touching blobs are separated by a two-voxel dark line), medium background,
      blurred, plus Gaussian noise.
    * ``mask`` (uint8): ones.

    :param path: the zarr container to write (created if missing).
    :param shape: the volume's shape in voxels; default 96 per axis.
    :param voxel_size: the voxel size in world units (nm); default 8 per axis.
    :param num_blobs: the number of seed points; default one per 16 voxels along each axis
        (216 for 96³). Seeds that fall on the same voxel merge.
    :param seed: the random seed; the same seed writes the same data.
    :param ndim: 2 or 3 spatial dimensions; default ``len(shape)``, or 3 without a shape.
    :returns: ``path`` as a :class:`~pathlib.Path`.
    """
    import numpy as np

    shape, voxel_size = _resolve_geometry(shape, voxel_size, ndim)
    dims = len(shape)
    if num_blobs is None:
        num_blobs = max(1, round(math.prod(shape) / _CELL_SPACING**dims))
    if num_blobs < 1:
        raise ValueError(f"num_blobs must be at least 1, got {num_blobs}")
    rng = np.random.default_rng(seed)
    labels = _blobs(rng, shape, num_blobs)
    raw = _raw(rng, labels)
    path = Path(path)
    write_array(path, "raw", raw, voxel_size=voxel_size)
    write_array(path, "gt", labels, voxel_size=voxel_size)
    write_array(path, "mask", np.ones(shape, dtype=np.uint8), voxel_size=voxel_size)
    return path


def _resolve_geometry(
    shape: Sequence[int] | None, voxel_size: Sequence[int] | None, ndim: int | None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if ndim is None:
        ndim = len(shape) if shape is not None else 3
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim}")
    shape = (96,) * ndim if shape is None else tuple(int(s) for s in shape)
    voxel_size = (8,) * ndim if voxel_size is None else tuple(int(v) for v in voxel_size)
    if len(shape) != ndim or len(voxel_size) != ndim:
        raise ValueError(
            f"shape {list(shape)} and voxel_size {list(voxel_size)} must have ndim={ndim} entries"
        )
    if any(s < 1 for s in shape) or any(v < 1 for v in voxel_size):
        raise ValueError(f"shape {list(shape)} and voxel_size {list(voxel_size)} must be positive")
    return shape, voxel_size


def _blobs(rng: Any, shape: tuple[int, ...], num_blobs: int) -> Any:
    import numpy as np
    from scipy import ndimage

    seeds = np.zeros(shape, dtype=np.int64)
    points = np.stack([rng.integers(0, size, num_blobs) for size in shape])
    seeds[tuple(points)] = np.arange(1, num_blobs + 1)
    distance, nearest = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    voronoi = seeds[tuple(nearest)]
    radii = rng.uniform(0.45, 0.8, num_blobs + 1) * _CELL_SPACING
    labels = np.where(distance <= radii[voronoi], voronoi, 0)
    # Consecutive labels 1..n (seeds on the same voxel, or outside every blob, leave gaps).
    _, consecutive = np.unique(labels, return_inverse=True)
    consecutive = consecutive.reshape(shape)
    if labels.min() != 0:  # no background at all: keep 0 for background
        consecutive += 1
    return consecutive.astype(np.uint64)


def _raw(rng: Any, labels: Any) -> Any:
    import numpy as np
    from scipy import ndimage

    boundary = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        lower = [slice(None)] * labels.ndim
        upper = [slice(None)] * labels.ndim
        lower[axis] = slice(None, -1)
        upper[axis] = slice(1, None)
        differs = labels[tuple(lower)] != labels[tuple(upper)]
        boundary[tuple(lower)] |= differs
        boundary[tuple(upper)] |= differs
    inside = labels != 0
    intensity = np.where(inside, np.where(boundary, _BOUNDARY, _INTERIOR), _BACKGROUND)
    intensity = ndimage.gaussian_filter(intensity, _BLUR_SIGMA)
    intensity += rng.normal(0.0, _NOISE_STD, labels.shape)
    return np.clip(np.rint(intensity), 0, 255).astype(np.uint8)
